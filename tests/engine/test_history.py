"""History checks over plain signals: each reason, the volume ceiling, reputation decay. No app."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from verify.engine import history
from verify.engine.decide import judge
from verify.engine.limits import DEFAULT_LIMITS, LIMIT_RANGES
from verify.engine.policy import PolicyInvalid, parse_policy
from verify.engine.reasons import default_points

DATA = Path(__file__).resolve().parents[2] / "data"
POLICY = parse_policy(json.loads((DATA / "default_policy.json").read_text()), version=1, base_points=default_points())
HOUR, DAY = 3600, 86400


def signals(
    *,
    counts: dict | None = None,
    email: dict | None = None,
    ip: dict | None = None,
    keys: dict | None = None,
    first_seen: float | None = 400.0,
    reputation: dict | None = None,
    capped: list[str] | None = None,
) -> dict:
    """Signals of an ordinary signup from a corporate domain, with the given history."""
    base_email = {"valid": True, "domain": "acme-corp.example", "canonical": "sam.lee@acme-corp.example",
                  "local": "sam.lee", "free": False, "relay": False, "provider": None}
    return {
        "email": {**base_email, **(email or {})},
        "phone": {"provided": False},
        "ip": {"provided": True, "address": "81.2.69.160", "scope": "global", **(ip or {})},
        "lists": [],
        "history": {
            "windows": {"short": HOUR, "medium": DAY, "long": 30 * DAY},
            "cap": 1000,
            "keys": {"email_domain": "acme-corp.example", "local_template": "a.a", "ip_network": "198.51.100.0/24",
                     "asn": 64500, "phone_block": "+14155550", **(keys or {})},
            "counts": counts or {},
            "capped": capped or [],
            "email_domain_first_seen_days": first_seen,
            "reputation": reputation or {},
        },
    }


def fired(found: dict) -> set[str]:
    return {reason.code for reason in judge(found, POLICY).reasons}


def w(short: int = 0, medium: int | None = None, long: int | None = None) -> dict[str, int]:
    medium = short if medium is None else medium
    return {"short": short, "medium": medium, "long": medium if long is None else long}


GMAIL = {"domain": "gmail.com", "canonical": "johnsmith@gmail.com", "free": True, "provider": "gmail"}

CASES = [
    ("nothing-earlier", signals(counts={"ip": w(0), "email_domain": w(0, 0, 30)}), set()),
    ("gmail-dot-variant", signals(email=GMAIL, counts={"email_variants": {"long": 1}}), {"email.canonical_reuse"}),
    ("same-spelling-again-is-no-variant", signals(email=GMAIL, counts={"email_canonical": w(1), "email_variants": {"long": 0}}), set()),
    ("phone-reused", signals(counts={"phone": w(0, 0, 1)}), {"phone.reuse"}),
    ("phone-block-burst", signals(counts={"phone_block": w(3)}), {"phone.range_burst"}),
    ("phone-block-slow", signals(counts={"phone_block": w(0, 1, 10)}), {"phone.range_burst"}),
    ("phone-block-quiet", signals(counts={"phone_block": w(1, 2, 4)}), set()),
    ("device-three-other-mailboxes", signals(counts={"device": w(0, 0, 3)}), {"device.reuse"}),
    ("device-shared-by-a-family", signals(counts={"device": w(0, 0, 2)}), set()),
    ("ip-hour", signals(counts={"ip": w(10)}), {"ip.velocity"}),
    ("ip-day", signals(counts={"ip": w(2, 30)}), {"ip.velocity"}),
    ("ip-below", signals(counts={"ip": w(9, 29)}), set()),
    ("network", signals(counts={"ip_network": w(20)}), {"ip.network_velocity"}),
    ("cellular-network-not-yet", signals(ip={"connection_type": "Cellular"}, counts={"ip_network": w(59), "ip": w(29)}), set()),
    ("cellular-network-at-three-times", signals(ip={"connection_type": "Cellular"}, counts={"ip": w(30)}), {"ip.velocity"}),
    ("asn-burst", signals(counts={"asn": w(60, 70)}), {"ip.asn_velocity"}),
    ("asn-steady-big-isp", signals(counts={"asn": w(60, 60 * 24)}), set()),
    ("asn-usual-rate-unknown", signals(counts={"asn": w(60, 1000)}, capped=["asn.medium"]), set()),
    ("young-domain-hour", signals(first_seen=0.5, counts={"email_domain": w(10, 10, 10)}), {"email.domain_burst"}),
    ("new-domain-day", signals(first_seen=None, counts={"email_domain": w(0, 0, 0)}), set()),
    ("young-domain-slow-and-low", signals(first_seen=9, counts={"email_domain": w(1, 8, 40)}), {"email.domain_burst"}),
    ("old-domain-sudden", signals(first_seen=300, counts={"email_domain": w(3, 25, 40)}), {"email.domain_burst"}),
    ("old-domain-steady", signals(first_seen=300, counts={"email_domain": w(3, 25, 750)}), set()),
    ("old-big-domain", signals(first_seen=300, counts={"email_domain": w(12, 30, 1000)}, capped=["email_domain.long"]), set()),
    ("free-domain-never-bursts", signals(email=GMAIL, first_seen=None, counts={"email_domain": w(500)}), set()),
    ("pattern-day", signals(keys={"local_template": "a.a9999"}, counts={"local_template": w(1, 5, 5)}), {"email.pattern_burst"}),
    ("pattern-month", signals(keys={"local_template": "x"}, counts={"local_template": w(0, 1, 10)}), {"email.pattern_burst"}),
    ("first-last-is-no-pattern", signals(keys={"local_template": "a.a"}, counts={"local_template": w(20, 20, 20)}), set()),
    ("pattern-not-on-free-mail", signals(email=GMAIL, keys={"local_template": "a9999"}, counts={"local_template": w(50)}), set()),
]


@pytest.mark.parametrize("found, expected", [(s, e) for _, s, e in CASES], ids=[name for name, _, _ in CASES])
def test_history_checks(found, expected):
    assert fired(found) == expected


def record(fraud: float, legitimate: float, sample: int = 20) -> dict:
    return {"fraud": fraud, "legitimate": legitimate, "sample": sample}


@pytest.mark.parametrize(
    "key, code",
    [("email_domain", "email.domain_reputation"), ("ip_network", "ip.network_reputation"),
     ("asn", "ip.asn_reputation"), ("device", "device.reputation")],
)
def test_reputation_checks(key, code):
    # An ASN's record counts on a flagged network (or with fraud feedback: see below).
    flagged = {"is_hosting_provider": True} if key == "asn" else {}
    assert code in fired(signals(ip=flagged, reputation={key: record(4, 1)}))
    assert code not in fired(signals(reputation={key: record(2, 0)}))  # too little evidence
    assert code not in fired(signals(reputation={key: record(6, 10)}))  # mostly legitimate


def test_free_mail_domain_has_no_reputation():
    assert fired(signals(email=GMAIL, reputation={"email_domain": record(50, 1)})) == set()


def test_reputation_decays_and_feedback_outweighs_verdicts():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    fresh = history.reputation([(now - timedelta(hours=1), "deny", None)], at=now, limits=DEFAULT_LIMITS)
    month = history.reputation([(now - timedelta(days=30), "deny", None)], at=now, limits=DEFAULT_LIMITS)
    assert fresh["fraud"] == pytest.approx(1, abs=0.01) and month["fraud"] == pytest.approx(0.5, abs=0.01)
    told = history.reputation([(now, "allow", "fraud"), (now, "challenge", None), (now, "deny", "legitimate")], at=now, limits=DEFAULT_LIMITS)
    assert told == {"fraud": 3.0, "legitimate": 3.0, "fraud_feedback": 3.0, "sample": 3}


def test_asn_record_on_a_clean_network_needs_fraud_feedback():
    verdicts_only = {"asn": {"fraud": 40.0, "legitimate": 1.0, "fraud_feedback": 0.0, "sample": 50}}
    reported = {"asn": {"fraud": 40.0, "legitimate": 1.0, "fraud_feedback": 6.0, "sample": 50}}
    assert "ip.asn_reputation" not in fired(signals(reputation=verdicts_only))
    assert "ip.asn_reputation" in fired(signals(reputation=reported))


# -- shared networks: volume alone never denies on a clean network ---------------------------

BUSY = {"ip": w(40, 80), "ip_network": w(90, 200), "asn": w(80, 90)}
VOLUME = {"ip.velocity", "ip.network_velocity", "ip.asn_velocity"}


def test_volume_alone_on_a_clean_network_challenges_at_most():
    decision = judge(signals(counts=BUSY), POLICY)
    assert {reason.code for reason in decision.reasons} == VOLUME
    assert sum(reason.points for reason in decision.reasons) >= POLICY.deny
    assert (decision.verdict, decision.score) == ("challenge", POLICY.deny - 1)


def test_volume_with_a_young_domain_burst_still_only_challenges():
    found = signals(first_seen=None, counts={**BUSY, "email_domain": w(12)})
    assert judge(found, POLICY).verdict == "challenge"


@pytest.mark.parametrize(
    "flag", ["is_hosting_provider", "is_public_proxy", "is_residential_proxy", "is_tor_exit_node"]
)
def test_volume_counts_in_full_on_a_flagged_network(flag):
    # In full, but still network evidence: with a clean identity it asks for a challenge at most
    # (decide.network_ceiling); one identity reason beside it denies.
    assert judge(signals(ip={flag: True}, counts=BUSY), POLICY).verdict == "challenge"
    recycled = signals(ip={flag: True}, counts={**BUSY, "email_variants": {"long": 1}})
    assert judge(recycled, POLICY).verdict == "deny"


@pytest.mark.parametrize("value", ["unknown", False, None])
def test_unknown_flags_are_not_held_against_anyone(value):
    assert judge(signals(ip={"is_hosting_provider": value}, counts=BUSY), POLICY).verdict == "challenge"


def test_volume_counts_in_full_with_bad_email_evidence():
    found = signals(email={"random_local_part": True, "local": "xkqzvbtwp"}, counts=BUSY)
    decision = judge(found, POLICY)
    assert "email.random_local_part" in {reason.code for reason in decision.reasons}
    assert decision.verdict == "deny"


def test_a_deny_that_needs_no_volume_is_kept():
    found = signals(email={"disposable": True}, counts=BUSY)
    assert judge(found, POLICY).verdict == "deny"


def test_checks_read_absent_history_as_nothing():
    bare = {"email": {"valid": True, "domain": "acme-corp.example"}, "phone": {}, "ip": {}, "history": {}, "lists": []}
    assert fired(bare) == set()
    broken = copy.deepcopy(signals(counts={"ip": {"short": "many"}}))
    assert fired(broken) == set()


# -- limits are policy -------------------------------------------------------------------------

def test_default_policy_carries_every_limit_within_its_range():
    document = json.loads((DATA / "default_policy.json").read_text())
    assert document["limits"] == DEFAULT_LIMITS
    assert set(DEFAULT_LIMITS) == set(LIMIT_RANGES)
    for name, value in DEFAULT_LIMITS.items():
        low, high = LIMIT_RANGES[name]
        assert low <= value <= high, name


def test_a_policy_can_tune_a_limit_and_a_bad_one_is_refused():
    tuned = parse_policy({"thresholds": {"challenge": 40, "deny": 80}, "limits": {"ip_short": 3}}, version=2, base_points=default_points())
    assert tuned.limits["ip_short"] == 3 and tuned.limits["ip_medium"] == DEFAULT_LIMITS["ip_medium"]
    assert "ip.velocity" in {reason.code for reason in judge(signals(counts={"ip": w(3)}), tuned).reasons}
    with pytest.raises(PolicyInvalid):
        parse_policy({"thresholds": {"challenge": 40, "deny": 80}, "limits": {"ip_short": 0}}, version=2, base_points=default_points())
    with pytest.raises(PolicyInvalid):
        parse_policy({"thresholds": {"challenge": 40, "deny": 80}, "limits": {"no_such_limit": 3}}, version=2, base_points=default_points())
