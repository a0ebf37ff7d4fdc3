"""Network evidence alone never denies a clean identity: honest VPN, hosting and Tor users get a challenge at most."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify.engine.decide import judge
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points

DATA = Path(__file__).resolve().parents[2] / "data"
POLICY = parse_policy(json.loads((DATA / "default_policy.json").read_text()), version=1, base_points=default_points())
HOUR, DAY = 3600, 86400

# Our own verdicts on the exit made its record bad; nobody reported fraud on it.
BAD_RECORD = {"fraud": 12.0, "legitimate": 1.0, "fraud_feedback": 0.0, "sample": 50}


def vpn_user(*, ip: dict | None = None, email: dict | None = None, counts: dict | None = None,
             reputation: dict | None = None, lists: list | None = None, phone: dict | None = None) -> dict:
    """An honest person on a commercial VPN exit that farms used before: a deliverable gmail address seen once."""
    return {
        "email": {"valid": True, "domain": "gmail.com", "canonical": "ana.ruiz@gmail.com", "local": "ana.ruiz",
                  "free": True, "relay": False, "provider": "gmail", "mx": "known_provider", **(email or {})},
        "phone": phone or {"provided": False},
        "ip": {"provided": True, "address": "146.70.12.9", "scope": "global", "country": "CH", "declared_country": "US",
               "asn": 9009, "is_anonymous_vpn": True, "is_hosting_provider": True, **(ip or {})},
        "lists": lists or [],
        "history": {
            "windows": {"short": HOUR, "medium": DAY, "long": 30 * DAY},
            "cap": 1000,
            "keys": {"ip_network": "146.70.12.0/24", "asn": 9009},
            "counts": {"ip_network": {"short": 25, "medium": 70, "long": 400}, "ip": {"short": 0, "medium": 0, "long": 0},
                       "email_variants": {"long": 0}, **(counts or {})},
            "capped": [],
            "email_domain_first_seen_days": None,
            "reputation": {"ip_network": dict(BAD_RECORD), "asn": dict(BAD_RECORD), **(reputation or {})},
        },
    }


def codes(decision) -> set[str]:
    return {reason.code for reason in decision.reasons}


@pytest.mark.parametrize("flags", [
    pytest.param({}, id="vpn-in-a-datacentre"),
    pytest.param({"is_tor_exit_node": True}, id="tor-exit"),
    pytest.param({"is_public_proxy": True, "is_anonymous_vpn": False}, id="public-proxy"),
])
def test_network_reasons_alone_challenge_a_clean_identity(flags):
    decision = judge(vpn_user(ip=flags), POLICY)
    assert {"ip.anonymous_vpn", "ip.hosting", "ip.network_reputation", "ip.asn_reputation", "ip.country_mismatch",
            "ip.network_velocity"} - {"ip.anonymous_vpn"} <= codes(decision)
    assert sum(reason.points for reason in decision.reasons) >= POLICY.deny  # the points alone would deny
    assert decision.verdict == "challenge"
    assert decision.score == POLICY.deny - 1


def test_a_quiet_vpn_user_is_still_allowed():
    found = vpn_user(ip={"is_hosting_provider": False, "country": "US"}, counts={"ip_network": {"short": 0, "medium": 0, "long": 0}},
                     reputation={"ip_network": {}, "asn": {}})
    assert judge(found, POLICY).verdict == "allow"


def test_a_relay_address_is_still_a_clean_identity():
    found = vpn_user(email={"domain": "duck.com", "canonical": "x1y2@duck.com", "local": "x1y2", "free": False,
                            "relay": True, "provider": None})
    assert judge(found, POLICY).verdict == "challenge"


@pytest.mark.parametrize("identity, expected_code", [
    pytest.param({"email": {"canonical_reuse": True}, "counts": {"email_variants": {"long": 2}}}, "email.canonical_reuse", id="recycled-mailbox"),
    pytest.param({"counts": {"device": {"short": 5, "medium": 5, "long": 5}}}, "device.reuse", id="device-reuse"),
    pytest.param({"counts": {"payment": {"short": 4, "medium": 4, "long": 4}}}, "payment.reuse", id="payment-reuse"),
    pytest.param({"email": {"mx": "null_mx", "free": False, "provider": None, "domain": "nomail.example"}}, "email.undeliverable", id="undeliverable"),
])
def test_network_evidence_denies_when_the_identity_corroborates(identity, expected_code):
    found = vpn_user(email=identity.get("email"), counts=identity.get("counts"))
    decision = judge(found, POLICY)
    assert expected_code in codes(decision)
    assert decision.verdict == "deny"


def test_a_deny_list_match_on_the_network_denies():
    listed = [{"list": "blocked-ips", "action": "deny", "kind": "ip", "entry": "146.70.12.0/24", "matched": "146.70.12.9", "reason": None}]
    decision = judge(vpn_user(lists=listed), POLICY)
    assert "list.deny" in codes(decision) and decision.verdict == "deny"


def test_fraud_reported_by_people_on_the_network_lifts_the_cap():
    reported = {"ip_network": {**BAD_RECORD, "fraud_feedback": 6.0}}
    assert judge(vpn_user(reputation=reported), POLICY).verdict == "deny"


def test_fraud_reported_on_the_asn_only_does_not_lift_it():
    # Another exit of the same provider (a different /24) says nothing about this one's user.
    reported = {"asn": {**BAD_RECORD, "fraud_feedback": 6.0}}
    assert judge(vpn_user(reputation=reported), POLICY).verdict == "challenge"
