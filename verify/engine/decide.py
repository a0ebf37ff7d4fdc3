"""The decision: run every check over the signals, score the findings, pick a verdict."""

from __future__ import annotations

from verify.engine import email, history, lists, network, phone
from verify.engine.models import Check, Decision, Reason, Signals, Verdict
from verify.engine.policy import Policy

# The registry of checks, in the order their reasons are reported when points tie.
CHECKS: tuple[Check, ...] = (
    *email.CHECKS,
    *phone.CHECKS,
    *network.CHECKS,
    *lists.CHECKS,
    *history.CHECKS,
)


def verdict_for(score: int, policy: Policy) -> Verdict:
    if score >= policy.deny:
        return "deny"
    if score >= policy.challenge:
        return "challenge"
    return "allow"


# Reasons about the network a signup came through, not about the person: a VPN exit, a data
# centre, Tor, a proxy, the network's volume and its record in our own verdicts. Everyone
# behind one exit shares them.
NETWORK_AREA = "ip."
# Reasons that may stand beside network evidence without saying the identity is made up: a
# relay hides a real person's address; a challenge list asks for a challenge, not a denial.
NEUTRAL_CODES = frozenset({"email.relay", "list.challenge", "list.allow"})


def network_ceiling(signals: Signals, reasons: list[Reason], policy: Policy) -> int | None:
    """The highest score network evidence alone may reach on a clean identity, or None when it counts in full.

    Honest people use commercial VPNs and hosting exits that farms used before them: what other
    people did through the same exit is no evidence about this one. Network evidence denies only
    when the identity corroborates it (any other reason), a deny list matches (handled by the
    verdict rule), or a person reported fraud on that network (feedback in its reputation).
    """
    scoring = [reason for reason in reasons if reason.points > 0]
    if not any(reason.code.startswith(NETWORK_AREA) for reason in scoring):
        return None
    if any(not reason.code.startswith(NETWORK_AREA) and reason.code not in NEUTRAL_CODES for reason in scoring):
        return None
    record = history.history_of(signals).get("reputation", {}).get("ip_network")
    if isinstance(record, dict) and (record.get("fraud_feedback") or 0) > 0:
        return None
    return policy.deny - 1


def judge(signals: Signals, policy: Policy, *, checks: tuple[Check, ...] = CHECKS) -> Decision:
    """Score what the signals show under a policy.

    A deny-list match wins over everything; otherwise an allow-list match wins over the
    score; a challenge-list match asks for at least a challenge. Volume reasons alone, on a
    network with no hosting or proxy flag, lift the score to just below deny at most; so do
    network reasons alone on a clean identity (`network_ceiling`).
    """
    found = [finding for check in checks for finding in check(signals, policy)]
    reasons = sorted(
        (Reason(f.code, policy.points_for(f.code), f.detail) for f in found),
        key=lambda reason: -reason.points,
    )
    score = max(0, min(100, sum(reason.points for reason in reasons)))
    ceiling = history.volume_ceiling(signals, reasons, policy)
    if ceiling is not None:  # volume alone on a clean network: at most a challenge
        score = max(0, min(score, ceiling))
    ceiling = network_ceiling(signals, reasons, policy)
    if ceiling is not None:  # network evidence alone on a clean identity: at most a challenge
        score = max(0, min(score, ceiling))
    codes = {reason.code for reason in reasons}
    verdict = verdict_for(score, policy)
    if "list.deny" in codes:
        verdict = "deny"
    elif "list.allow" in codes:
        verdict = "allow"
    elif "list.challenge" in codes and verdict == "allow":
        verdict = "challenge"
    return Decision(verdict=verdict, score=score, reasons=tuple(reasons))
