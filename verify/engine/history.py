"""Checks over the stored history: one identity behind many signups, bursts, reputation.

The store counts earlier signups per key and window; the Assessor writes those counts into
`signals["history"]`; the checks here read only the signals and `policy.limits`, so that a
proposed policy can re-judge stored signals without touching the database.

`signals["history"]` holds:
- `windows`: the length of each window in seconds (`short`, `medium`, `long`), `cap`: the
  largest count reported, `capped`: the `key.window` counts that reached the cap;
- `keys`: the values counted (canonical email, domain, template, number block, network, ASN);
- `counts`: earlier signups per key and window (`email_variants`, `phone`, `device` and `payment` count
  only signups of *other* mailboxes: a person retrying is not a farm);
- `email_domain_first_seen_days`: age of the domain in this service's history (null: new);
- `reputation`: per key, the decayed weight of fraud and legitimate evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from verify.engine.models import Finding, Reason, Signals

WINDOWS = ("short", "medium", "long")
DAY = 86_400

# Reasons that measure volume only: real people behind one office or carrier address, or
# employees of one new company, produce volume too. Alone, on a network nobody flagged,
# they may ask for a challenge but never deny (see `volume_ceiling`).
VOLUME_CODES = frozenset({"ip.velocity", "ip.network_velocity", "ip.asn_velocity", "email.domain_burst"})

# Reasons that add weight but, like volume, an honest crowd can produce too: a campus or a
# company whose addresses follow one naming scheme, or a network or domain whose record comes
# from our own earlier verdicts (which volume itself may have caused). They never lift the
# ceiling; a reputation record that includes fraud feedback from people does (see below).
SOFT_CODES = frozenset({"email.pattern_burst", "email.domain_reputation", "ip.network_reputation", "ip.asn_reputation", "device.reputation"})

# Evidence that the identity itself is made up or recycled: with any of these, volume counts in full.
CORROBORATING_CODES = frozenset({
    "email.invalid", "email.disposable", "email.undeliverable", "email.random_local_part",
    "email.canonical_reuse",
    "phone.invalid", "phone.voip", "phone.premium_or_special", "phone.reuse", "phone.range_burst",
    "device.reuse", "payment.reuse",
    "cluster.fraud_label", "cluster.list_match", "cluster.limit",
    "ip.hosting", "ip.tor", "ip.public_proxy", "ip.residential_proxy", "ip.invalid_or_private",
    "list.deny", "list.challenge",
})

# The reputation key behind each reputation reason, to tell feedback-backed records apart.
REPUTATION_KEYS = {
    "email.domain_reputation": "email_domain",
    "ip.network_reputation": "ip_network",
    "ip.asn_reputation": "asn",
    "device.reputation": "device",
}

# GeoIP flags of networks where nobody lives: hosting, Tor, proxies. A VPN alone is not one of
# them (people use VPNs), though VPN exits in data centres carry the hosting flag as well.
SUSPECT_NETWORK_FLAGS = ("is_hosting_provider", "is_tor_exit_node", "is_public_proxy", "is_residential_proxy")


# -- reading the signals ---------------------------------------------------------------

def history_of(signals: Signals) -> Mapping[str, Any]:
    return signals.get("history") or {}


def count(signals: Signals, key: str, window: str) -> int | None:
    """An earlier-signup count, or None when the key was absent or not counted."""
    value = history_of(signals).get("counts", {}).get(key, {}).get(window)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_capped(signals: Signals, key: str, window: str) -> bool:
    return f"{key}.{window}" in history_of(signals).get("capped", ())


def window_label(signals: Signals, window: str) -> str:
    seconds = history_of(signals).get("windows", {}).get(window)
    if not isinstance(seconds, int) or seconds <= 0:
        return window
    if seconds % DAY == 0 and seconds != DAY:
        return f"{seconds // DAY} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{max(1, seconds // 60)} minutes"


def shown(signals: Signals, key: str, window: str) -> str:
    """A count for a detail line: `1000+` when it reached the cap."""
    value = count(signals, key, window)
    return f"{value}+" if is_capped(signals, key, window) else str(value)


def flag(signals: Signals, area: str, name: str) -> bool:
    """True only when a reader said True: absent or "unknown" is not known."""
    return signals.get(area, {}).get(name) is True


def network_is_suspect(signals: Signals) -> bool:
    return any(flag(signals, "ip", name) for name in SUSPECT_NETWORK_FLAGS)


def is_cellular(signals: Signals) -> bool:
    return str(signals.get("ip", {}).get("connection_type", "")).lower() == "cellular"


def domain_is_shared(signals: Signals) -> bool:
    """Free-mail and relay domains hold millions of unrelated people: no domain-level history."""
    email = signals.get("email", {})
    return bool(email.get("free") or email.get("relay") or email.get("provider"))


def limit(policy: Any, name: str) -> int:
    return int(policy.limits[name])


# -- pure helpers the Assessor uses ----------------------------------------------------

def windows(limits: Mapping[str, int]) -> dict[str, int]:
    """Window name -> length in seconds, from the policy limits."""
    return {name: int(limits[f"window_{name}_seconds"]) for name in WINDOWS}


def reputation(
    evidence: Iterable[tuple[datetime, str, str | None]], *, at: datetime, limits: Mapping[str, int]
) -> dict[str, Any]:
    """Decayed fraud and legitimate weight from (occurred_at, verdict, feedback label) of earlier signups.

    Feedback (a person or a chargeback said so) weighs `reputation_feedback_weight` verdicts;
    a verdict of our own weighs one; a challenge without feedback says nothing. Every piece
    halves in weight each `reputation_half_life_days`, so a record heals.
    """
    half_life = limits["reputation_half_life_days"] * DAY
    feedback_weight = limits["reputation_feedback_weight"]
    fraud = legitimate = fraud_feedback = 0.0
    sample = 0
    for occurred_at, verdict, label in evidence:
        sample += 1
        decay = 0.5 ** (max(0.0, (at - occurred_at).total_seconds()) / half_life)
        if label == "fraud":
            fraud += feedback_weight * decay
            fraud_feedback += feedback_weight * decay
        elif label == "legitimate":
            legitimate += feedback_weight * decay
        elif verdict == "deny":
            fraud += decay
        elif verdict == "allow":
            legitimate += decay
    return {"fraud": round(fraud, 3), "legitimate": round(legitimate, 3), "fraud_feedback": round(fraud_feedback, 3), "sample": sample}


def volume_ceiling(signals: Signals, reasons: Iterable[Reason], policy: Any) -> int | None:
    """The highest score volume alone may reach, or None when volume counts in full.

    On a network with no hosting or proxy flag, and with no reason that says the identity is
    made up or recycled, volume reasons may lift the score up to just below the deny threshold:
    that is mobile-carrier NAT, an office, a company onboarding its staff.
    """
    reasons = [reason for reason in reasons if reason.points > 0]
    soft = VOLUME_CODES | SOFT_CODES
    volume = sum(reason.points for reason in reasons if reason.code in soft)
    if volume == 0 or network_is_suspect(signals):
        return None
    if any(reason.code in CORROBORATING_CODES or has_fraud_feedback(signals, reason.code) for reason in reasons):
        return None
    rest = sum(reason.points for reason in reasons if reason.code not in soft)
    return max(policy.deny - 1, rest)


def has_fraud_feedback(signals: Signals, code: str) -> bool:
    """A reputation reason whose record holds fraud reported by people, not only our verdicts."""
    key = REPUTATION_KEYS.get(code)
    record = history_of(signals).get("reputation", {}).get(key) if key else None
    return isinstance(record, Mapping) and (record.get("fraud_feedback") or 0) > 0


# -- checks: one identity behind many accounts -----------------------------------------

def check_canonical_reuse(signals: Signals, policy: Any) -> Iterator[Finding]:
    earlier = count(signals, "email_variants", "long")
    if earlier is not None and earlier >= limit(policy, "email_canonical_reuse"):
        yield Finding(
            "email.canonical_reuse",
            f"the mailbox {signals['email'].get('canonical')} signed up {shown(signals, 'email_variants', 'long')} times "
            f"before under other spellings in the last {window_label(signals, 'long')}",
        )


def reuse_check(key: str, code: str, what: str):
    """One number or device behind other mailboxes: `{key}_reuse` of them in the long window."""

    def check(signals: Signals, policy: Any) -> Iterator[Finding]:
        earlier = count(signals, key, "long")
        if earlier is not None and earlier >= limit(policy, f"{key}_reuse"):
            yield Finding(
                code,
                f"{what} signed up {shown(signals, key, 'long')} other mailboxes in the last {window_label(signals, 'long')}",
            )

    check.__name__ = f"check_{key}_reuse"
    return check


check_phone_reuse = reuse_check("phone", "phone.reuse", "this number")
check_device_reuse = reuse_check("device", "device.reuse", "this device")
check_payment_reuse = reuse_check("payment", "payment.reuse", "this payment method")


def check_phone_range_burst(signals: Signals, policy: Any) -> Iterator[Finding]:
    for window in WINDOWS:
        earlier = count(signals, "phone_block", window)
        if earlier is not None and earlier >= limit(policy, f"phone_block_{window}"):
            block = history_of(signals).get("keys", {}).get("phone_block", "")
            yield Finding(
                "phone.range_burst",
                f"{shown(signals, 'phone_block', window)} other numbers of the block {block}xxx signed up "
                f"in the last {window_label(signals, window)}",
            )
            return


# -- checks: volume from one address, network, ASN, domain -----------------------------

def over(signals: Signals, policy: Any, key: str, *, factor: int = 1) -> str | None:
    """The first window whose count reached `{key}_{window}` (times factor), if any."""
    for window in ("short", "medium"):
        earlier = count(signals, key, window)
        if earlier is not None and earlier >= limit(policy, f"{key}_{window}") * factor:
            return window
    return None


def network_factor(signals: Signals, policy: Any) -> int:
    return limit(policy, "cellular_limit_factor") if is_cellular(signals) else 1


def check_ip_velocity(signals: Signals, policy: Any) -> Iterator[Finding]:
    window = over(signals, policy, "ip", factor=network_factor(signals, policy))
    if window:
        yield Finding(
            "ip.velocity",
            f"{shown(signals, 'ip', window)} signups from this address in the last {window_label(signals, window)}",
        )


def check_network_velocity(signals: Signals, policy: Any) -> Iterator[Finding]:
    window = over(signals, policy, "ip_network", factor=network_factor(signals, policy))
    if window:
        network = history_of(signals).get("keys", {}).get("ip_network")
        yield Finding(
            "ip.network_velocity",
            f"{shown(signals, 'ip_network', window)} signups from {network} in the last {window_label(signals, window)}",
        )


def check_asn_velocity(signals: Signals, policy: Any) -> Iterator[Finding]:
    # Big ISPs carry steady volume all day: only a burst above the ASN's own usual rate counts.
    # When the medium count reached the cap the usual rate is unknown, so nothing is claimed.
    short, medium = count(signals, "asn", "short"), count(signals, "asn", "medium")
    spans = history_of(signals).get("windows", {})
    short_s, medium_s = spans.get("short"), spans.get("medium")
    if short is None or medium is None or not short_s or not medium_s or medium_s <= short_s:
        return
    if is_capped(signals, "asn", "medium"):
        return
    usual = (medium - short) * short_s / (medium_s - short_s)
    if short >= limit(policy, "asn_short") * network_factor(signals, policy) and short >= limit(policy, "asn_burst_ratio") * max(usual, 1.0):
        asn = history_of(signals).get("keys", {}).get("asn")
        yield Finding(
            "ip.asn_velocity",
            f"{shown(signals, 'asn', 'short')} signups from AS{asn} in the last {window_label(signals, 'short')}, "
            f"against about {usual:.0f} usually",
        )


def check_domain_burst(signals: Signals, policy: Any) -> Iterator[Finding]:
    email = signals.get("email", {})
    if not email.get("valid") or domain_is_shared(signals):
        return
    age = history_of(signals).get("email_domain_first_seen_days")
    young = age is None or age < limit(policy, "email_domain_new_days")
    window = over(signals, policy, "email_domain")
    if young:
        long = count(signals, "email_domain", "long")
        if window is None and long is not None and long >= limit(policy, "email_domain_long"):
            window = "long"
        if window:
            seen = "never seen before" if age is None else f"first seen {age:.0f} days ago"
            yield Finding(
                "email.domain_burst",
                f"{shown(signals, 'email_domain', window)} signups from {email.get('domain')} "
                f"in the last {window_label(signals, window)}; the domain was {seen}",
            )
        return
    # An established domain bursts only against its own daily average (a long count at the cap
    # means a large domain whose average is unknown: no claim).
    medium, long = count(signals, "email_domain", "medium"), count(signals, "email_domain", "long")
    long_s = history_of(signals).get("windows", {}).get("long")
    if window is None or medium is None or long is None or not long_s or is_capped(signals, "email_domain", "long"):
        return
    daily = long * DAY / long_s
    if medium >= limit(policy, "email_domain_burst_ratio") * max(daily, 1.0):
        yield Finding(
            "email.domain_burst",
            f"{shown(signals, 'email_domain', 'medium')} signups from {email.get('domain')} in the last "
            f"{window_label(signals, 'medium')}, against about {daily:.1f} a day usually",
        )


def check_pattern_burst(signals: Signals, policy: Any) -> Iterator[Finding]:
    email = signals.get("email", {})
    template = history_of(signals).get("keys", {}).get("local_template")
    if not email.get("valid") or domain_is_shared(signals) or not template:
        return
    if "9" not in template and "x" not in template:  # first.last is how staff are named
        return
    for window in ("medium", "long"):
        earlier = count(signals, "local_template", window)
        if earlier is not None and earlier >= limit(policy, f"pattern_{window}"):
            yield Finding(
                "email.pattern_burst",
                f"{shown(signals, 'local_template', window)} earlier local parts of the template {template!r} "
                f"on {email.get('domain')} in the last {window_label(signals, window)}",
            )
            return


# -- checks: reputation ----------------------------------------------------------------

REPUTATION_CODES = {
    "email_domain": ("email.domain_reputation", "the domain"),
    "ip_network": ("ip.network_reputation", "the network"),
    "asn": ("ip.asn_reputation", "the ASN"),
    "device": ("device.reputation", "the device"),
}


def bad_record(signals: Signals, policy: Any, key: str) -> dict[str, Any] | None:
    record = history_of(signals).get("reputation", {}).get(key)
    if not isinstance(record, Mapping):
        return None
    fraud, legitimate = record.get("fraud", 0), record.get("legitimate", 0)
    if not isinstance(fraud, (int, float)) or not isinstance(legitimate, (int, float)):
        return None
    if fraud < limit(policy, "reputation_min_fraud"):
        return None
    if fraud * 100 < limit(policy, "reputation_fraud_percent") * (fraud + legitimate):
        return None
    return dict(record)


def reputation_check(key: str):
    code, what = REPUTATION_CODES[key]

    def check(signals: Signals, policy: Any) -> Iterator[Finding]:
        if key == "email_domain" and (not signals.get("email", {}).get("valid") or domain_is_shared(signals)):
            return
        # A big residential or mobile ASN carries millions of people and the proxies hiding
        # among them: its record speaks only where the network is flagged, or people reported fraud.
        if key == "asn" and not network_is_suspect(signals) and not has_fraud_feedback(signals, code):
            return
        record = bad_record(signals, policy, key)
        if record is not None:
            value = history_of(signals).get("keys", {}).get(key)
            yield Finding(
                code,
                f"{what} {value} has a record of fraud: weight {record['fraud']:.1f} fraud against "
                f"{record['legitimate']:.1f} legitimate over its last {record.get('sample', 0)} signups",
            )

    check.__name__ = f"check_{key}_reputation"
    return check


CHECKS = (
    check_canonical_reuse,
    check_pattern_burst,
    check_domain_burst,
    reputation_check("email_domain"),
    check_phone_reuse,
    check_phone_range_burst,
    check_ip_velocity,
    check_network_velocity,
    check_asn_velocity,
    reputation_check("ip_network"),
    reputation_check("asn"),
    check_device_reuse,
    reputation_check("device"),
    check_payment_reuse,
)
