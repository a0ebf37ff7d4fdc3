"""The IP checks, as tables of (signals, expected reason codes); no app, no database files."""

from __future__ import annotations

import pytest

from verify.engine import network
from verify.engine.decide import judge
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points

CLEAN = {
    "provided": True,
    "address": "81.2.69.10",
    "version": 4,
    "scope": "global",
    "network": "81.2.69.0/24",
    "country": "GB",
    "registered_country": "GB",
    "asn": 20712,
    "as_org": "Andrews & Arnold Ltd",
    "is_anonymous": False,
    "is_anonymous_vpn": False,
    "is_hosting_provider": False,
    "is_public_proxy": False,
    "is_residential_proxy": False,
    "is_tor_exit_node": False,
    "declared_country": None,
}
UNKNOWN_FLAGS = {flag: "unknown" for flag in ("is_anonymous", "is_anonymous_vpn", "is_hosting_provider", "is_public_proxy", "is_residential_proxy", "is_tor_exit_node")}
ALLOW_IP = {"list": "allowed-ips", "action": "allow", "kind": "ip", "entry": "10.0.0.0/8", "matched": "10.1.2.3", "reason": None}
ALLOW_DOMAIN = {"list": "allowed-domains", "action": "allow", "kind": "email_domain", "entry": "corp.example", "matched": "corp.example", "reason": None}


def codes_for(ip: dict, lists: list | None = None) -> set[str]:
    signals = {"ip": ip, "lists": lists or []}
    return {finding.code for check in network.CHECKS for finding in check(signals, None)}


@pytest.mark.parametrize(
    "ip, lists, expected",
    [
        ({"provided": False}, [], set()),
        (CLEAN, [], set()),
        ({**CLEAN, "declared_country": "GB"}, [], set()),
        ({**CLEAN, "scope": "private", "address": "10.1.2.3"}, [], {"ip.invalid_or_private"}),
        ({**CLEAN, "scope": "loopback", "address": "::1"}, [], {"ip.invalid_or_private"}),
        ({**CLEAN, "scope": "documentation", "address": "2001:db8::1"}, [], {"ip.invalid_or_private"}),
        ({**CLEAN, "scope": "reserved", "address": "240.0.0.1"}, [], {"ip.invalid_or_private"}),
        ({**CLEAN, "scope": "private", "address": "10.1.2.3"}, [ALLOW_IP], set()),
        ({**CLEAN, "scope": "private", "address": "10.1.2.3"}, [ALLOW_DOMAIN], {"ip.invalid_or_private"}),
        ({**CLEAN, "is_anonymous": True, "is_hosting_provider": True}, [], {"ip.hosting"}),
        ({**CLEAN, "user_type": "hosting"}, [], {"ip.hosting"}),
        ({**CLEAN, "user_type": "residential"}, [], set()),
        ({**CLEAN, "is_anonymous": True, "is_anonymous_vpn": True}, [], {"ip.anonymous_vpn"}),
        ({**CLEAN, "is_anonymous": True, "is_tor_exit_node": True}, [], {"ip.tor"}),
        ({**CLEAN, "is_anonymous": True, "is_public_proxy": True}, [], {"ip.public_proxy"}),
        ({**CLEAN, "is_anonymous": True, "is_residential_proxy": True}, [], {"ip.residential_proxy"}),
        ({**CLEAN, "is_anonymous": True, "is_anonymous_vpn": True, "is_hosting_provider": True}, [], {"ip.anonymous_vpn", "ip.hosting"}),
        ({**CLEAN, "declared_country": "FR"}, [], {"ip.country_mismatch"}),
        ({**CLEAN, "country": None, "declared_country": "FR"}, [], set()),
        ({**CLEAN, "country": "unknown", "declared_country": "FR"}, [], set()),
        ({**CLEAN, **UNKNOWN_FLAGS}, [], set()),
        ({**CLEAN, "is_anonymous": "unknown", "is_tor_exit_node": "unknown"}, [], set()),
    ],
    ids=[
        "no-ip",
        "clean",
        "declared-same-country",
        "private",
        "loopback-v6",
        "documentation-v6",
        "reserved",
        "private-but-allow-listed",
        "private-other-allow-list-does-not-excuse",
        "hosting",
        "hosting-by-enterprise-user-type",
        "residential-user-type",
        "vpn",
        "tor",
        "public-proxy",
        "residential-proxy",
        "vpn-in-datacenter",
        "country-mismatch",
        "country-not-in-database",
        "country-unknown-never-mismatches",
        "unknown-flags-never-fire",
        "unknown-tor-never-fires",
    ],
)
def test_ip_checks(ip, lists, expected):
    assert codes_for(ip, lists) == expected


@pytest.mark.parametrize(
    "address, scope",
    [
        ("81.2.69.10", "global"),
        ("2a02:1000::1", "global"),
        ("::ffff:81.2.69.10", "global"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("2001:db8::1", "documentation"),
        ("100.64.0.1", "shared"),
        ("169.254.10.1", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("abcd:1000::", "reserved"),
    ],
)
def test_address_scope(address, scope):
    assert network.address_scope(address) == scope


def test_points_come_from_the_policy_not_the_check():
    document = {"thresholds": {"challenge": 40, "deny": 80}, "points": {"ip.tor": 7}}
    policy = parse_policy(document, version=9, base_points=default_points())
    signals = {"email": {"valid": True, "domain": "example.com", "local": "a"}, "phone": {"provided": False},
               "ip": {**CLEAN, "is_anonymous": True, "is_tor_exit_node": True}, "lists": []}
    decision = judge(signals, policy)
    assert [(r.code, r.points) for r in decision.reasons] == [("ip.tor", 7)]
    assert decision.verdict == "allow"


def test_hosting_from_the_hosting_networks_list_says_where_it_came_from():
    ip = {**CLEAN, **UNKNOWN_FLAGS, "as_org": "unknown", "is_hosting_provider": True,
          "hosting_source": "hosting-networks list", "hosting_network": "3.5.140.0/22"}
    findings = list(network.check_hosting({"ip": ip}, None))
    assert [f.code for f in findings] == ["ip.hosting"]
    assert findings[0].detail == f"{ip['address']} is in 3.5.140.0/22, on the hosting-networks list"
