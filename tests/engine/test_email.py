"""Email checks as pure functions: tables of (input, expected) with readable ids."""

from __future__ import annotations

import pytest

from verify.engine.decide import judge
from verify.engine.email import EmailInvalid, is_role_account, looks_random, parse_email, typo_suggestion
from verify.engine.policy import parse_policy
from verify.engine.reasons import default_points
from verify.intel.providers import Providers
from verify.settings import Settings

PROVIDERS = Providers.load(Settings().data_dir)
POLICY = parse_policy({"thresholds": {"challenge": 40, "deny": 80}}, version=1, base_points=default_points())


@pytest.mark.parametrize(
    "raw, address, ascii_domain",
    [
        ("Alice.Johnson@GMAIL.com", "Alice.Johnson@gmail.com", "gmail.com"),
        ("  bob@example.org ", None, None),
        ("用户@例子.广告", "用户@例子.广告", "xn--fsqu00a.xn--4rr70v"),
        ("josé@bücher.de", "josé@bücher.de", "xn--bcher-kva.de"),
    ],
    ids=["case-of-domain", "surrounding-space", "chinese-idn", "accents"],
)
def test_parse_normalises(raw, address, ascii_domain):
    if address is None:
        with pytest.raises(EmailInvalid):
            parse_email(raw)
        return
    parsed = parse_email(raw)
    assert (parsed.address, parsed.ascii_domain) == (address, ascii_domain)


@pytest.mark.parametrize(
    "raw",
    ["not-an-address", "a@", "@b.com", "a@b", "a..b@example.com", "a@[127.0.0.1]", "a b@example.com", "a@-bad-.com", ""],
    ids=["no-at", "no-domain", "no-local", "dotless-domain", "double-dot", "ip-literal", "space", "bad-label", "empty"],
)
def test_invalid_addresses(raw):
    with pytest.raises(EmailInvalid):
        parse_email(raw)


@pytest.mark.parametrize(
    "domain, suggestion",
    [
        ("gmial.com", "gmail.com"),
        ("gmai.com", "gmail.com"),
        ("gmail.co", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("outlok.com", "outlook.com"),
        ("yahooo.com", "yahoo.com"),
        ("iclod.com", "icloud.com"),
        ("gmail.com", None),
        ("mail.com", None),
        ("ymail.com", None),
        ("acme-corp.io", None),
        ("gmx.de", None),
    ],
    ids=lambda value: str(value),
)
def test_typo_suggestion(domain, suggestion):
    assert typo_suggestion(domain, PROVIDERS.popular, known=PROVIDERS.free) == suggestion


@pytest.mark.parametrize(
    "local, random",
    [
        ("alice.johnson", False),
        ("jwilson88", False),
        ("mary.brown1907", False),
        ("schwarzkopf", False),
        ("christopher", False),
        ("dmitriy.krstic", False),
        ("qzxvbn7k", True),
        ("a8f3k2l9", True),
        ("hjkdfs8723", True),
        ("5f4dcc3b5aa765d61d8327deb882cf99", True),
    ],
)
def test_looks_random(local, random):
    assert looks_random(local) is random


@pytest.mark.parametrize(
    "local, role",
    [("admin", True), ("Info", True), ("support+tickets", True), ("no.reply", True), ("noreply", True), ("alice", False), ("alice.admin", False)],
)
def test_role_accounts(local, role):
    assert is_role_account(local, PROVIDERS.role_names) is role


def test_relays_cover_subdomains():
    assert PROVIDERS.is_relay("mozmail.com")
    assert PROVIDERS.is_relay("alice.anonaddy.com")
    assert not PROVIDERS.is_relay("com")
    assert not PROVIDERS.is_relay("gmail.com")


def email_signals(**overrides):
    signals = {
        "valid": True, "local": "pat", "domain": "example.org", "free": False, "relay": False,
        "role_account": False, "random_local_part": False, "typo_suggestion": None, "mx": "ok", "disposable": False,
    }
    signals.update(overrides)
    return {"email": signals, "phone": {}, "ip": {}, "history": {}, "lists": []}


@pytest.mark.parametrize(
    "overrides, codes, verdict",
    [
        ({}, set(), "allow"),
        ({"valid": False, "error": "no @"}, {"email.invalid"}, "deny"),
        ({"disposable": True}, {"email.disposable"}, "deny"),
        ({"disposable": True, "typo_suggestion": "gmail.com"}, {"email.typo_domain"}, "challenge"),
        ({"relay": True}, {"email.relay"}, "allow"),
        ({"mx": "null_mx"}, {"email.undeliverable"}, "deny"),
        ({"mx": "no_mail_host"}, {"email.undeliverable"}, "deny"),
        ({"mx": "unknown"}, set(), "allow"),
        ({"mx": "skipped"}, set(), "allow"),
        ({"role_account": True}, {"email.role_account"}, "allow"),
        ({"random_local_part": True}, {"email.random_local_part"}, "allow"),
        ({"random_local_part": True, "role_account": True}, {"email.random_local_part", "email.role_account"}, "challenge"),
        ({"random_local_part": True, "relay": True}, {"email.relay"}, "allow"),
    ],
    ids=["clean", "invalid", "disposable", "typo-on-disposable-list", "relay", "null-mx", "no-mail-host",
         "dns-unknown", "mx-check-off", "role", "random", "role-and-random", "relay-alias-is-random"],
)
def test_email_checks(overrides, codes, verdict):
    decision = judge(email_signals(**overrides), POLICY)
    assert {reason.code for reason in decision.reasons} == codes
    assert decision.verdict == verdict


def test_score_is_capped_at_100():
    decision = judge(email_signals(disposable=True, mx="null_mx", role_account=True), POLICY)
    assert decision.score == 100
