"""Canonical identities: provider aliasing rules (one case per provider), templates, blocks, networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify.engine import identity
from verify.engine.email import parse_email
from verify.intel.providers import Providers

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def providers() -> Providers:
    return Providers.load(DATA)


def canonical(providers: Providers, address: str) -> str:
    parsed = parse_email(address)
    return providers.canonical_email(parsed.local, parsed.ascii_domain)


# provider -> (address as typed, the mailbox it reaches), from each provider's documented aliasing.
PROVIDER_CASES = {
    "gmail": [
        ("J.Ohn.Smith+promo@gmail.com", "johnsmith@gmail.com"),
        ("john.smith@googlemail.com", "johnsmith@gmail.com"),
        ("johnsmith+a+b@GMAIL.com", "johnsmith@gmail.com"),
    ],
    "microsoft": [
        ("Jane.Doe+shop@outlook.com", "jane.doe@outlook.com"),
        ("jane.doe+x@hotmail.com", "jane.doe@hotmail.com"),
        ("jane+x@live.co.uk", "jane@live.co.uk"),
    ],
    "yahoo": [("bob.lee-newsletters@yahoo.com", "bob.lee@yahoo.com"), ("bob+x@ymail.com", "bob+x@ymail.com")],
    "icloud": [("Ann.Lee+tag@me.com", "ann.lee@icloud.com"), ("ann.lee@mac.com", "ann.lee@icloud.com")],
    "proton": [
        ("john.smith+x@protonmail.com", "johnsmith@proton.me"),
        ("John-Smith@pm.me", "johnsmith@proton.me"),
        ("john_smith@proton.me", "johnsmith@proton.me"),
    ],
    "fastmail": [("kim.park+work@fastmail.com", "kim.park@fastmail.com"), ("kim+a@fastmail.fm", "kim@fastmail.fm")],
    "zoho": [("raj+x@zohomail.com", "raj@zohomail.com")],
    "yandex": [("ivan-petrov+x@yandex.com", "ivan.petrov@yandex.ru"), ("ivan.petrov@ya.ru", "ivan.petrov@yandex.ru")],
    "gmx": [("max+tag@gmx.de", "max+tag@gmx.de")],
    "web.de": [("max.m+tag@web.de", "max.m+tag@web.de")],
    "mail.com": [("Sam+tag@mail.com", "sam+tag@mail.com")],
    "aol": [("Pat.Kim+x@aol.com", "pat.kim+x@aol.com")],
    "mail.ru": [("oleg+tag@mail.ru", "oleg@mail.ru")],
    "tutanota": [("lena+x@tuta.io", "lena+x@tuta.io")],
    "hey": [("dave+news@hey.com", "dave@hey.com")],
    "qq": [("12345+x@qq.com", "12345+x@qq.com")],
    "netease": [("wang.li+x@163.com", "wang.li+x@163.com")],
}


@pytest.mark.parametrize(
    "address, mailbox",
    [case for cases in PROVIDER_CASES.values() for case in cases],
    ids=[f"{provider}:{address}" for provider, cases in PROVIDER_CASES.items() for address, _ in cases],
)
def test_provider_rule(providers, address, mailbox):
    assert canonical(providers, address) == mailbox


def test_every_provider_in_the_data_has_a_case():
    document = json.loads((DATA / "email_providers.json").read_text())
    assert {provider["provider"] for provider in document["providers"]} == set(PROVIDER_CASES)


@pytest.mark.parametrize(
    "address, mailbox",
    [
        ("Sales.Team+campaign@Example-Corp.com", "sales.team@example-corp.com"),
        ("a.b.c@example-corp.com", "a.b.c@example-corp.com"),  # dots matter outside Gmail and Proton
        ("+only@example-corp.com", "+only@example-corp.com"),  # a leading + is a name, not a tag
    ],
    ids=["tag-and-case", "dots-kept", "leading-plus"],
)
def test_generic_rule(providers, address, mailbox):
    assert canonical(providers, address) == mailbox


def test_generic_rule_is_data():
    rules, generic = identity.provider_rules({"generic": {"tag": "+-", "case_fold": False}, "providers": []})
    assert rules == {}
    assert identity.canonical_email("Bob-x+y", "corp.example", rules, fallback=generic) == "Bob@corp.example"


def test_a_provider_that_keeps_case():
    rules, _ = identity.provider_rules({"providers": [{"provider": "p", "domains": ["p.example"], "case_fold": False}]})
    assert identity.canonical_email("Bob+x", "p.example", rules) == "Bob@p.example"


@pytest.mark.parametrize(
    "local, template",
    [
        ("jameswilson8812", "a9999"),
        ("james.wilson8812", "a.a9999"),
        ("mary.brown1907", "a.a9999"),
        ("john.smith", "a.a"),
        ("xkqzvbtw", "x"),
        ("user_4f9a2c7e1b3d8a6f", "a_x"),
        ("k7f9q2mx", "x"),
        ("p3z8w1ab", "x"),
    ],
    ids=["name-digits", "first-last-digits", "same-shape", "first-last", "random-run", "hex-after-underscore", "random-alnum", "random-alnum-2"],
)
def test_local_template(local, template):
    assert identity.local_template(local) == template


def test_templates_from_one_generator_agree_and_mark_generated():
    assert identity.local_template("james.wilson8812") == identity.local_template("mary.brown1907")
    assert identity.is_generated_template("a.a9999") and identity.is_generated_template("x")
    assert not identity.is_generated_template("a.a")


@pytest.mark.parametrize(
    "phone, region, keys",
    [
        ("+14155550123", None, ("+14155550123", "+14155550")),
        ("(415) 555-0124", "us", ("+14155550124", "+14155550")),
        ("+44 20 7946 0018", None, ("+442079460018", "+442079460")),
        ("not a phone", None, (None, None)),
        ("12", "US", (None, None)),
        ("0123", None, (None, None)),
    ],
    ids=["e164", "national-with-country", "uk", "garbage", "too-short", "national-without-country"],
)
def test_phone_keys(phone, region, keys):
    assert identity.phone_keys(phone, region=region) == keys


@pytest.mark.parametrize(
    "address, network",
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
    ],
    ids=["ipv4", "ipv6", "ipv4-mapped"],
)
def test_ip_network(address, network):
    assert identity.ip_network(address) == network


def test_ip_filter_kinds():
    assert identity.ip_filter("203.0.113.7") == ("ip", ("203.0.113.7",))
    assert identity.ip_filter("203.0.113.9/24") == ("ip_network", ("203.0.113.0/24",))
    assert identity.ip_filter("10.1.0.0/23") == ("ip_network", ("10.1.0.0/24", "10.1.1.0/24"))
    assert identity.ip_filter("203.0.113.8/30") == ("ip", tuple(f"203.0.113.{n}" for n in (8, 9, 10, 11)))
    assert identity.ip_filter("2001:db8::/63") == ("ip_network", ("2001:db8::/64", "2001:db8:0:1::/64"))
    assert len(identity.ip_filter("10.0.0.0/16")[1]) == 256


@pytest.mark.parametrize("text", ["10.0.0.0/8", "2001:db8::/48", "2001:db8::/100", "nope", "1.2.3.4/33"])
def test_ip_filter_refuses_what_is_no_index_lookup(text):
    with pytest.raises(ValueError):
        identity.ip_filter(text)
