"""Every identity normaliser, driven by the one table of cases (tests/support/identity_cases.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.identity_cases import CASES, Case
from verify.engine import identity, list_values
from verify.engine.identity import IdentityInvalid, MailRules, ProviderRule
from verify.intel.providers import Providers
from verify.settings import PROJECT_ROOT

RULES = Providers.load(PROJECT_ROOT / "data").mail_rules


def _phone(raw: str) -> str:
    e164 = identity.phone_e164(raw)
    if e164 is None:
        raise IdentityInvalid("not a possible number")
    return e164


NORMALISERS: dict[str, Callable[[str], str]] = {
    "email": lambda raw: identity.email_key(raw, rules=RULES).canonical,
    "email_address": lambda raw: identity.email_key(raw, rules=RULES).address,
    "email_domain": identity.email_domain,
    "phone": _phone,
    "phone_prefix": list_values.phone_prefix,
    "ip": identity.ip_address,
    "country": identity.country,
    "asn": identity.asn,
    "device": identity.device,
}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_normaliser_gives_the_expected_key(case: Case) -> None:
    normalise = NORMALISERS[case.kind]
    if case.expected is None:
        with pytest.raises(IdentityInvalid):
            normalise(case.raw)
    else:
        assert normalise(case.raw) == case.expected


# The list kinds whose entries are made by the same normalisers as the signups' keys.
LIST_KINDS = {kind: kind for kind in ("email", "email_domain", "ip", "country", "asn", "device", "phone_prefix")}


@pytest.mark.parametrize("case", [c for c in CASES if c.kind in LIST_KINDS], ids=lambda case: case.id)
def test_list_entries_are_the_same_keys(case: Case) -> None:
    normalise = list_values.normaliser(LIST_KINDS[case.kind], rules=RULES)
    if case.expected is None:
        with pytest.raises(list_values.ValueInvalid):
            normalise(case.raw)
    else:
        assert normalise(case.raw) == case.expected


def test_a_list_entry_follows_a_non_default_generic_rule() -> None:
    # A deployment whose generic rule also cuts `-tags` wrote `bob-shop@corp.example` on a list
    # for the signups `bob@corp.example` makes; the entry used to ignore the generic rule.
    rules = MailRules(rules={}, fallback=ProviderRule(provider="generic", canonical_domain="", tag_separators="+-"))
    entry = list_values.normaliser("email", rules=rules)("bob-shop@corp.example")
    assert entry == identity.email_key("Bob-news@corp.example", rules=rules).canonical == "bob@corp.example"


def test_case_is_kept_where_the_provider_keeps_it() -> None:
    keeps = ProviderRule(provider="p", canonical_domain="", case_fold=False)
    rules = MailRules(rules={"p.example": keeps})
    assert identity.email_key("Bob@P.example", rules=rules).address == "Bob@p.example"
    assert identity.email_key("Bob@P.example", rules=rules).canonical == "Bob@p.example"
    assert identity.email_key("Straße@other.example", rules=rules).canonical == "strasse@other.example"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("::ffff:81.2.69.0/120", "81.2.69.0/24"),
        ("::ffff:81.2.69.160/128", "81.2.69.160"),
        (" 81.2.69.0/24\n", "81.2.69.0/24"),
        ("2a02:db8::/32", "2a02:db8::/32"),
    ],
)
def test_ip_entries_unwrap_mapped_networks(raw: str, expected: str) -> None:
    assert identity.ip_entry(raw) == expected


@pytest.mark.parametrize("raw", ["fe80::%eth0/64", "010.1.1.0/24", "10.0.0.5/24"])
def test_ip_entries_refuse_zone_ids_leading_zeros_and_host_bits(raw: str) -> None:
    with pytest.raises(IdentityInvalid):
        identity.ip_entry(raw)


def test_search_filters_take_mapped_addresses() -> None:
    assert identity.ip_filter("::ffff:81.2.69.160") == ("ip", ("81.2.69.160",))
    assert identity.ip_filter("::ffff:81.2.69.0/120") == ("ip_network", ("81.2.69.0/24",))
    with pytest.raises(ValueError):
        identity.ip_filter("fe80::1%eth0")


def test_keys_are_derived_from_signals_alone() -> None:
    signals = {
        "email": {"valid": True, "address": "j.smith@gmail.com", "canonical": "jsmith@gmail.com", "domain": "gmail.com"},
        "phone": {"provided": True, "possible": True, "e164": "+447700900123"},
        "ip": {"provided": True, "address": "81.2.69.160", "network": "81.2.69.0/24", "asn": 64500},
    }
    assert identity.signup_keys(signals, device_id="dev-1") == identity.Keys(
        email="j.smith@gmail.com",
        email_canonical="jsmith@gmail.com",
        email_domain="gmail.com",
        local_template="a",
        phone_e164="+447700900123",
        phone_block="+447700900",
        ip="81.2.69.160",
        ip_network="81.2.69.0/24",
        asn=64500,
        device_id="dev-1",
    )
    assert identity.signup_keys({"email": {"valid": False}, "phone": {"provided": False}, "ip": {"provided": False}}, device_id=None) == identity.Keys()
