"""Re-judging stored assessments on later evidence: reach, the raised verdict, never lower. Pure, no app."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from verify.engine import revisions
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points
from verify.engine.revisions import Evidence, Link, StoredAssessment, rejudge

DATA = Path(__file__).resolve().parents[2] / "data"
POLICY = parse_policy(json.loads((DATA / "default_policy.json").read_text()), version=1, base_points=default_points())
AT = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
HOUR, DAY = 3600, 86400


def clean_signals(**counts) -> dict:
    return {
        "email": {"valid": True, "domain": "gmail.com", "canonical": "ana@gmail.com", "local": "ana", "free": True,
                  "provider": "gmail", "mx": "known_provider"},
        "phone": {"provided": False},
        "ip": {"provided": True, "address": "73.1.2.3", "scope": "global"},
        "lists": [],
        "history": {"windows": {"short": HOUR, "medium": DAY, "long": 30 * DAY}, "cap": 1000, "keys": {},
                    "counts": counts, "capped": [], "reputation": {}},
    }


def stored(id_: str = "a1", *, verdict: str = "allow", reasons=(), minutes: float = 0, **keys) -> StoredAssessment:
    return StoredAssessment(id=id_, occurred_at=AT + timedelta(minutes=minutes), keys=keys, signals=clean_signals(),
                            reasons=list(reasons), verdict=verdict)


def labelled(**keys) -> StoredAssessment:
    return stored("x", **keys)


def evidence_of(**keys) -> Evidence:
    return revisions.fraud_label_evidence(labelled(**keys), limits=POLICY.limits, shared_domain=True, label_source="review")


def test_a_shared_device_raises_an_allowed_member_to_deny_with_the_reason():
    outcome = rejudge(stored(device_id="d1", minutes=30), evidence_of(device_id="d1"), POLICY)
    assert (outcome.previous_verdict, outcome.verdict) == ("allow", "deny")
    assert [reason.code for reason in outcome.reasons] == ["cluster.fraud_label"]
    assert "shares its device with assessment x" in outcome.reasons[0].detail


def test_the_labelled_assessment_itself_is_raised():
    assert rejudge(stored("x", device_id="d1"), evidence_of(device_id="d1"), POLICY).verdict == "deny"


@pytest.mark.parametrize("member", [
    pytest.param(stored(device_id="d2"), id="another-device"),
    pytest.param(stored(device_id="d1", minutes=31 * 24 * 60), id="outside-the-look-back"),
    pytest.param(stored(device_id="d1", verdict="deny"), id="already-denied"),
])
def test_no_revision(member):
    assert rejudge(member, evidence_of(device_id="d1"), POLICY) is None


def test_a_weak_link_needs_identity_evidence_of_its_own():
    evidence = evidence_of(ip_network="73.1.2.0/24")
    clean = stored(ip_network="73.1.2.0/24", minutes=60)
    recycled = stored(ip_network="73.1.2.0/24", minutes=60, verdict="challenge",
                      reasons=[{"code": "phone.range_burst", "points": 40, "detail": ""}])
    hosted = stored(ip_network="73.1.2.0/24", minutes=60, reasons=[{"code": "ip.hosting", "points": 30, "detail": ""}])
    assert rejudge(clean, evidence, POLICY) is None
    assert rejudge(hosted, evidence, POLICY) is None  # network evidence is no identity evidence
    assert rejudge(recycled, evidence, POLICY).verdict == "deny"
    assert rejudge(stored(ip_network="73.1.2.0/24", minutes=25 * 60, reasons=recycled.reasons), evidence, POLICY) is None


def test_a_template_is_followed_only_when_generated_on_a_domain_of_its_own():
    def weak_columns(template: str, shared: bool) -> set[str]:
        found = revisions.fraud_label_evidence(labelled(local_template=template), limits=POLICY.limits,
                                               shared_domain=shared, label_source="review")
        return {link.column for link in found.links if link.weak}

    assert weak_columns("a.a9", shared=False) == {"local_template"}
    assert weak_columns("a.a", shared=False) == set()
    assert weak_columns("a.a9", shared=True) == set()


def test_a_deny_list_match_denies_even_an_allow_listed_assessment():
    evidence = revisions.list_evidence("blocked-devices", "device", ["d1"], now=AT + timedelta(days=1), limits=POLICY.limits)
    listed = stored(device_id="d1", reasons=[{"code": "list.allow", "points": 0, "detail": ""}])
    assert rejudge(listed, evidence, POLICY).verdict == "deny"


@pytest.mark.parametrize("kind, value, keys, hit", [
    ("email_domain", "farm.example", {"email_domain": "mx.farm.example"}, True),
    ("email_domain", "farm.example", {"email_domain": "notfarm.example"}, False),
    ("phone_prefix", "1415555", {"phone_e164": "+14155551234"}, True),
    ("ip", "73.1.2.0/24", {"ip_network": "73.1.2.0/24"}, True),
    ("ip", "73.1.2.3", {"ip": "73.1.2.3"}, True),
    # Wider and narrower networks reach the stored keys they cover (the /24s, or the addresses).
    ("ip", "73.1.0.0/22", {"ip_network": "73.1.2.0/24"}, True),
    ("ip", "73.1.0.0/22", {"ip_network": "73.1.4.0/24"}, False),
    ("ip", "73.1.2.0/28", {"ip": "73.1.2.9"}, True),
    ("ip", "73.1.2.0/28", {"ip": "73.1.2.99"}, False),
    ("ip", "2001:db8:0:100::/56", {"ip_network": "2001:db8:0:1ff::/64"}, True),
    ("asn", "7922", {"asn": 7922}, True),
])
def test_list_reach_by_kind(kind, value, keys, hit):
    evidence = revisions.list_evidence("l", kind, [value], now=AT + timedelta(days=1), limits=POLICY.limits)
    assert any(link.reaches(keys, AT) for link in evidence.links) is hit


def test_a_network_too_wide_to_list_by_key_revises_nothing():
    # A /8 covers 65,536 stored /24 keys: not a bounded lookup (the README says so).
    assert revisions.list_evidence("blocked-ips", "ip", ["10.0.0.0/8"], now=AT, limits=POLICY.limits) is None


def test_a_country_entry_revises_nothing():
    assert revisions.list_evidence("blocked-countries", "country", ["RU"], now=AT, limits=POLICY.limits) is None


def test_a_cluster_crosses_its_limit_once():
    limit = POLICY.limits["cluster_device"]
    counts = lambda n: {"device": {"short": n, "medium": n, "long": n}}  # noqa: E731
    assert revisions.crossed_limits(clean_signals(**counts(limit - 1)), POLICY.limits) == ["device"]
    assert revisions.crossed_limits(clean_signals(**counts(limit - 2)), POLICY.limits) == []
    assert revisions.crossed_limits(clean_signals(**counts(limit)), POLICY.limits) == []


def test_only_a_legitimate_label_lowers():
    assert revisions.legitimate("challenge").verdict == "allow"
    assert revisions.legitimate("allow") is None


def test_the_evidence_survives_the_job_queue_unchanged():
    evidence = evidence_of(device_id="d1", phone_e164="+14155550123", ip_network="73.1.2.0/24")
    assert revisions.evidence_from_document(json.loads(json.dumps(revisions.evidence_document(evidence)))) == evidence


def test_re_judging_is_deterministic():
    evidence = evidence_of(device_id="d1", payment_fingerprint="fp")
    member = stored(device_id="d1", payment_fingerprint="fp", minutes=5)
    assert rejudge(member, evidence, POLICY) == rejudge(member, evidence, POLICY)


def test_a_link_window_is_half_open():
    link = Link("device_id", ("d1",), AT, AT + timedelta(hours=1), "")
    assert link.reaches({"device_id": "d1"}, AT) and not link.reaches({"device_id": "d1"}, AT + timedelta(hours=1))


def test_the_labelled_assessment_is_revised_for_its_label_not_for_sharing_keys_with_itself():
    outcome = rejudge(stored("x", device_id="d1", payment_fingerprint="fp"), evidence_of(device_id="d1", payment_fingerprint="fp"), POLICY)
    assert [reason.detail for reason in outcome.reasons] == ["labelled fraud by a person (review)"]
