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


def judge(signals: Signals, policy: Policy, *, checks: tuple[Check, ...] = CHECKS) -> Decision:
    """Score what the signals show under a policy.

    A deny-list match wins over everything; otherwise an allow-list match wins over the
    score; a challenge-list match asks for at least a challenge. Volume reasons alone, on a
    network with no hosting or proxy flag, lift the score to just below deny at most.
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
    codes = {reason.code for reason in reasons}
    verdict = verdict_for(score, policy)
    if "list.deny" in codes:
        verdict = "deny"
    elif "list.allow" in codes:
        verdict = "allow"
    elif "list.challenge" in codes and verdict == "allow":
        verdict = "challenge"
    return Decision(verdict=verdict, score=score, reasons=tuple(reasons))
