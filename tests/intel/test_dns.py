"""The MX check against a real DNS server on loopback."""

from __future__ import annotations

import time

import pytest

from verify.intel import dns as mx
from verify.intel.dns import MxChecker, parse_nameserver


@pytest.fixture
def checker(dns_server) -> MxChecker:
    return MxChecker(timeout=0.5, nameservers=(dns_server.nameserver,))


@pytest.mark.parametrize(
    "domain, expected",
    [
        ("example-mail.com", mx.OK),
        ("acme-corp.io", mx.OK),
        ("a-only.net", mx.OK),
        ("v6-only.net", mx.OK),
        ("nullmx.org", mx.NULL_MX),
        ("no-records.net", mx.NO_MAIL_HOST),
        ("does-not-exist.example-nx.com", mx.NO_MAIL_HOST),
        ("servfail.com", mx.UNKNOWN),
    ],
    ids=["mx", "mx-no-a", "implicit-mx-a", "implicit-mx-aaaa", "null-mx", "no-mail-records", "nxdomain", "servfail"],
)
def test_outcomes(checker, domain, expected):
    assert checker.check(domain) == expected


def test_timeout_is_unknown_within_the_deadline(checker):
    started = time.monotonic()
    assert checker.check("slow-dns.com") == mx.UNKNOWN
    assert time.monotonic() - started < 1.5


def test_unreachable_resolver_is_unknown():
    closed = MxChecker(timeout=0.3, nameservers=("127.0.0.1@9",))
    assert closed.check("example-mail.com") == mx.UNKNOWN


def test_answers_are_cached(checker, dns_server):
    checker.check("acme-corp.io")
    asked = len(dns_server.resolver.queries)
    assert checker.check("acme-corp.io") == mx.OK
    assert len(dns_server.resolver.queries) == asked


def test_negative_answers_are_cached(checker, dns_server):
    checker.check("never-registered.example-nx.com")
    asked = len(dns_server.resolver.queries)
    assert checker.check("never-registered.example-nx.com") == mx.NO_MAIL_HOST
    assert len(dns_server.resolver.queries) == asked


@pytest.mark.parametrize("text, expected", [("127.0.0.1", ("127.0.0.1", 53)), ("::1@5353", ("::1", 5353))])
def test_nameserver_syntax(text, expected):
    assert parse_nameserver(text) == expected


def test_switched_off_check_is_skipped():
    assert mx.NullMxChecker().check("example-mail.com") == mx.SKIPPED
