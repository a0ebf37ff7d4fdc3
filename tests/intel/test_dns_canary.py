"""A resolver that answers NXDOMAIN for everything (broken, or captive) is caught by a canary:
a name that must exist. While the canary fails, "no such domain" reads as unknown, never as
undeliverable."""

from __future__ import annotations

import time

import pytest

from tests.support.dns_server import CANARY, LoopbackDNS
from verify import metrics
from verify.intel import dns as mx
from verify.intel.dns import MxChecker, NullMxChecker


@pytest.fixture
def server():
    server = LoopbackDNS().start()
    yield server
    server.stop()


def make_checker(server: LoopbackDNS, **options) -> MxChecker:
    return MxChecker(timeout=0.5, nameservers=(server.nameserver,), canary=CANARY, **options)


def counted(outcome: str) -> float:
    return metrics.collectors().dns_lookups.labels(outcome=outcome)._value.get()


def canary_gauge() -> float:
    return metrics.collectors().dns_canary_ok.labels(canary=CANARY)._value.get()


def test_a_healthy_resolver_still_says_undeliverable(server):
    checker = make_checker(server)
    assert checker.check("gone.example-nx.com") == mx.NO_MAIL_HOST
    assert checker.check("no-records.net") == mx.NO_MAIL_HOST
    assert checker.readiness() == {"status": "ok", "canary": CANARY}
    assert canary_gauge() == 1


@pytest.mark.parametrize("domain", ["acme-corp.io", "gone.example-nx.com", "no-records.net"])
def test_nxdomain_for_everything_reads_unknown_not_undeliverable(server, domain):
    server.resolver.nxdomain_for_everything = True
    checker = make_checker(server)
    assert checker.check(domain) == mx.UNKNOWN
    assert checker.readiness() == {"status": "canary_failing", "canary": CANARY}
    assert canary_gauge() == 0


def test_null_mx_is_still_believed_while_the_canary_passes(server):
    assert make_checker(server).check("nullmx.org") == mx.NULL_MX


def test_the_canary_is_asked_at_most_once_per_interval(server):
    server.resolver.nxdomain_for_everything = True
    checker = make_checker(server, canary_interval=60)
    for number in range(5):
        assert checker.check(f"company-{number}.example-nx.com") == mx.UNKNOWN
    checker.readiness()
    assert server.resolver.count(CANARY) == 1


def test_undeliverable_again_once_the_canary_passes(server):
    server.resolver.nxdomain_for_everything = True
    checker = make_checker(server, canary_interval=0.2)
    assert checker.check("gone.example-nx.com") == mx.UNKNOWN
    server.resolver.nxdomain_for_everything = False
    time.sleep(0.3)
    # What was decided while the canary failed is not kept as an answer.
    assert checker.check("other.example-nx.com") == mx.NO_MAIL_HOST
    assert checker.readiness()["status"] == "ok"
    assert canary_gauge() == 1


def test_lookups_are_counted_by_outcome(server):
    checker = make_checker(server)
    before = {outcome: counted(outcome) for outcome in ("ok", "no_mail_host", "unknown")}
    checker.check("acme-corp.io")
    checker.check("gone.example-nx.com")
    checker.check("servfail.com")
    assert {outcome: counted(outcome) - before[outcome] for outcome in before} == {"ok": 1, "no_mail_host": 1, "unknown": 1}


def test_without_a_canary_the_check_says_off(server):
    checker = MxChecker(timeout=0.5, nameservers=(server.nameserver,), canary=None)
    assert checker.check("gone.example-nx.com") == mx.NO_MAIL_HOST
    assert checker.readiness() == {"status": "off"}
    assert NullMxChecker().readiness() == {"status": "off"}


@pytest.mark.parametrize(
    "value, expected",
    [(None, "gmail.com"), ("off", None), ("OFF", None), ("Canary.Example.", "canary.example")],
    ids=["default", "off", "off-upper", "normalised"],
)
def test_the_canary_setting(value, expected):
    from verify.settings import Settings

    environ = {} if value is None else {"VERIFY_DNS_CANARY": value}
    assert Settings.from_env(environ).dns_canary == expected


def test_denials_stored_since_the_canary_last_passed_are_forgotten_when_it_fails(server):
    checker = make_checker(server, canary_interval=0.3)
    assert checker.check("gone.example-nx.com") == mx.NO_MAIL_HOST  # true: the canary passes
    time.sleep(0.35)
    assert checker.readiness()["status"] == "ok"
    server.resolver.nxdomain_for_everything = True
    # Within the interval the canary is not asked again, so this lie gets through at first...
    assert checker.check("acme-corp.io") == mx.NO_MAIL_HOST
    time.sleep(0.35)
    assert checker.readiness()["status"] == "canary_failing"
    # ...but it is not kept once the canary fails; what was denied before the last pass is.
    assert checker.check("acme-corp.io") == mx.UNKNOWN
    assert checker.check("gone.example-nx.com") == mx.NO_MAIL_HOST
