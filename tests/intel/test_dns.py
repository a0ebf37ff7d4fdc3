"""The MX check against a real DNS server on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.dns_server import CANARY, LoopbackDNS, SilentDNS
from verify.intel import dns as mx
from verify.intel.dns import MxChecker, parse_nameserver


@pytest.fixture
def checker(dns_server) -> MxChecker:
    return MxChecker(timeout=0.5, nameservers=(dns_server.nameserver,), canary=CANARY)


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


def test_a_full_cache_lets_the_oldest_stored_outcome_go(dns_server):
    checker = MxChecker(timeout=0.5, nameservers=(dns_server.nameserver,), canary=None, cache_size=2)
    for domain in ("example-mail.com", "acme-corp.io", "a-only.net"):
        checker.check(domain)
    asked = {domain: dns_server.resolver.count(domain) for domain in ("example-mail.com", "acme-corp.io", "a-only.net")}
    assert checker.check("a-only.net") == checker.check("acme-corp.io") == mx.OK
    assert checker.check("example-mail.com") == mx.OK
    assert dns_server.resolver.count("a-only.net") == asked["a-only.net"]
    assert dns_server.resolver.count("acme-corp.io") == asked["acme-corp.io"]
    assert dns_server.resolver.count("example-mail.com") > asked["example-mail.com"]


@pytest.mark.parametrize("text, expected", [("127.0.0.1", ("127.0.0.1", 53)), ("::1@5353", ("::1", 5353))])
def test_nameserver_syntax(text, expected):
    assert parse_nameserver(text) == expected


def test_switched_off_check_is_skipped():
    assert mx.NullMxChecker().check("example-mail.com") == mx.SKIPPED


# -- an unanswering server: failures are cached, and one lookup per domain is in flight ------

@pytest.fixture
def silent():
    server = SilentDNS().start()
    yield server
    server.stop()


def test_concurrent_lookups_of_an_unanswering_domain_send_one_query(silent):
    checker = MxChecker(timeout=0.5, nameservers=(silent.nameserver,), canary=None)
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def signup() -> None:
        start.wait()
        outcomes.append(checker.check("hangs.example-slow.com"))

    threads = [threading.Thread(target=signup) for _ in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [mx.UNKNOWN] * 20
    assert silent.count("hangs.example-slow.com") == 1
    assert time.monotonic() - started < 1.5  # one timeout (0.5 s) and thread start-up, on a loaded machine


def test_a_lookup_right_after_a_timeout_costs_no_timeout(silent):
    checker = MxChecker(timeout=0.5, nameservers=(silent.nameserver,), canary=None)
    assert checker.check("hangs.example-slow.com") == mx.UNKNOWN
    started = time.monotonic()
    assert checker.check("hangs.example-slow.com") == mx.UNKNOWN
    assert time.monotonic() - started < 0.25  # half the timeout: no query was waited for
    assert silent.count("hangs.example-slow.com") == 1


def test_server_failures_are_cached_briefly(checker, dns_server):
    checker.check("servfail.com")
    asked = dns_server.resolver.count("servfail.com")
    assert checker.check("servfail.com") == mx.UNKNOWN
    assert dns_server.resolver.count("servfail.com") == asked


def test_cached_failures_expire(silent):
    checker = MxChecker(timeout=0.2, nameservers=(silent.nameserver,), canary=None, failure_ttl=0.3)
    checker.check("hangs.example-slow.com")
    time.sleep(0.4)
    assert checker.check("hangs.example-slow.com") == mx.UNKNOWN
    assert silent.count("hangs.example-slow.com") == 2


def test_cached_answers_expire_within_the_ttl_bounds():
    server = LoopbackDNS(ttl=300).start()
    try:
        # No canary: this is about the cache bounds, and a canary lookup slowed by a loaded machine
        # would turn the final answer into UNKNOWN (the canary has tests of its own).
        checker = MxChecker(timeout=2, nameservers=(server.nameserver,), canary=None, min_ttl=0.1, max_ttl=0.3)
        assert checker.check("acme-corp.io") == mx.OK
        del server.resolver.zone["acme-corp.io."]
        assert checker.check("acme-corp.io") == mx.OK  # still cached
        time.sleep(0.4)
        assert checker.check("acme-corp.io") == mx.NO_MAIL_HOST
    finally:
        server.stop()
