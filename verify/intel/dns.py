"""Mail deliverability of a domain from its MX records, with a cache and a hard deadline.

Three defences keep a bad resolver from hurting signups:

- Outcomes are cached here, failures too: a timeout or SERVFAIL for `failure_ttl` seconds,
  answers for their TTL bounded by `min_ttl` and `max_ttl`. An unanswering server then
  costs one timeout per domain per minute, not one per signup. A hit is a dict lookup and
  an expiry check, without a lock: it is on the path of every signup.
- One lookup per domain is in flight per process (single flight): concurrent callers for the
  same domain wait for the first one's outcome, each within its own deadline, instead of each
  sending a query and each waiting for the full timeout.
- A canary, a name that must have MX records: a broken or captive resolver answers NXDOMAIN
  for everything, which would make every company address undeliverable. While the canary
  fails, NXDOMAIN and empty answers read as UNKNOWN, never as NO_MAIL_HOST.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from verify import metrics

# Outcomes, as shown in signals.email.mx:
OK = "ok"  # MX hosts, or an A/AAAA record that serves as the implicit MX (RFC 5321 5.1)
NULL_MX = "null_mx"  # "MX 0 ." says the domain accepts no mail (RFC 7505)
NO_MAIL_HOST = "no_mail_host"  # the domain does not exist, or has neither MX nor A/AAAA
UNKNOWN = "unknown"  # timeout, server failure, or a resolver the canary caught lying: never a penalty
SKIPPED = "skipped"  # the check is switched off

OUTCOMES = (OK, NULL_MX, NO_MAIL_HOST, UNKNOWN)

# A resolver that times out now is likely to time out for the next signups too; a minute is
# short enough that a recovered resolver is used again soon.
FAILURE_TTL = 60.0
# Answers are kept for their TTL, within these bounds: a 0-second TTL must not send one query
# per signup, and a week-long one must not outlive a domain's change of mail host for long.
MIN_TTL = 60.0
MAX_TTL = 3600.0
# How often the canary is asked again, at most.
CANARY_INTERVAL = 30.0


def parse_nameserver(text: str) -> tuple[str, int]:
    """`127.0.0.1`, `127.0.0.1@5353` or `::1@5353`."""
    address, _, port = text.partition("@")
    return address, int(port) if port else 53


def make_resolver(nameservers: tuple[str, ...] = ()) -> dns.resolver.Resolver:
    """A resolver for the configured nameservers (`address[@port]`), else the system's."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        parsed = [parse_nameserver(text) for text in nameservers]
        resolver.nameservers = [address for address, _ in parsed]
        resolver.nameserver_ports = {address: port for address, port in parsed}
        return resolver
    try:
        return dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        return resolver


def canary_problem(resolver: dns.resolver.Resolver, name: str, *, timeout: float) -> str | None:
    """Why the canary's MX lookup fails through this resolver, or None when it has MX records."""
    try:
        answer = resolver.resolve(name, "MX", lifetime=timeout, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return f"{name} does not exist (NXDOMAIN), but it must"
    except dns.resolver.LifetimeTimeout:
        return f"no answer for {name} within {timeout:g}s"
    except dns.resolver.NoNameservers as error:
        return f"no nameserver could answer for {name} ({error})"
    except (dns.exception.DNSException, OSError, ValueError) as error:
        return f"lookup of {name} failed: {type(error).__name__}"
    if answer.rrset is None:
        return f"{name} has no MX records, but it must"
    return None


class Canary:
    """A name that must have MX records, looked up at most once per `interval` seconds."""

    def __init__(
        self,
        name: str,
        *,
        resolver: dns.resolver.Resolver,
        timeout: float,
        interval: float,
        on_failure: Callable[[float], None] = lambda last_passed: None,
    ) -> None:
        self.name = name
        self.on_failure = on_failure
        self.resolver = resolver
        self.timeout = timeout
        self.interval = interval
        self._lock = threading.Lock()
        self._passing: bool | None = None
        self._checked_at = float("-inf")
        self._passed_at = float("-inf")
        self._running: threading.Event | None = None

    def passing(self, *, wait: float) -> bool | None:
        """Whether the canary resolves; None before its first lookup has finished.

        A stale state starts a lookup and waits up to `wait` seconds for it. The lookup runs
        in its own thread with the full timeout, so that a caller's short deadline never
        records the canary as failing.
        """
        with self._lock:
            stale = time.monotonic() - self._checked_at >= self.interval
            if stale and self._running is None:
                self._running = threading.Event()
                threading.Thread(target=self._look_up, args=(self._running,), name="verify-dns-canary", daemon=True).start()
            running = self._running if stale else None
        if running is not None:
            running.wait(max(0.0, wait))
        return self._passing

    def _look_up(self, done: threading.Event) -> None:
        passing = False
        try:
            passing = canary_problem(self.resolver, self.name, timeout=self.timeout) is None
        finally:
            with self._lock:
                started_failing = not passing and self._passing is not False
                last_passed = self._passed_at
                self._passing = passing
                self._checked_at = time.monotonic()
                if passing:
                    self._passed_at = self._checked_at
                self._running = None
            if started_failing:
                self.on_failure(last_passed)
            metrics.set_dns_canary(self.name, ok=passing)
            done.set()


class _Cached(NamedTuple):
    outcome: str
    expires: float
    stored: float


class _Flight:
    """The one lookup of a domain in progress; others wait for its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome = UNKNOWN


class MxChecker:
    """Answers whether a domain can receive mail, within `timeout` seconds in all."""

    def __init__(
        self,
        *,
        timeout: float,
        nameservers: tuple[str, ...] = (),
        canary: str | None = None,
        canary_interval: float = CANARY_INTERVAL,
        cache_size: int = 50_000,
        failure_ttl: float = FAILURE_TTL,
        min_ttl: float = MIN_TTL,
        max_ttl: float = MAX_TTL,
    ) -> None:
        self.timeout = timeout
        self.failure_ttl = failure_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.cache_size = cache_size
        # No dnspython cache: outcomes are cached below, so that they expire within our bounds
        # and failures are cached too.
        self.resolver = make_resolver(nameservers)
        self.canary = (
            Canary(canary, resolver=self.resolver, timeout=timeout, interval=canary_interval, on_failure=self._forget_denials)
            if canary
            else None
        )
        # Written under the lock, read without it (one dict lookup is atomic). In the order
        # stored: when full, the oldest stored goes first; it expires within max_ttl anyway,
        # so a most-recently-used order would only save a few lookups per hour.
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._flights: dict[str, _Flight] = {}

    def check(self, ascii_domain: str) -> str:
        """One of OK, NULL_MX, NO_MAIL_HOST or UNKNOWN; never raises."""
        outcome = self._outcome(ascii_domain)
        metrics.record_lookup("dns_mx", ok=outcome != UNKNOWN)
        metrics.record_dns_lookup(outcome)
        return outcome

    def readiness(self) -> dict[str, str]:
        """`ok` or `canary_failing` with the canary's name, or `off` when there is no canary."""
        if self.canary is None:
            return {"status": "off"}
        passing = self.canary.passing(wait=self.timeout + 0.5)
        return {"status": "ok" if passing else "canary_failing", "canary": self.canary.name}

    def _outcome(self, domain: str) -> str:
        cached = self._cache.get(domain)
        now = time.monotonic()
        if cached is not None and cached.expires > now:
            return cached.outcome
        deadline = now + self.timeout
        with self._lock:
            cached = self._cache.get(domain)  # stored by a flight that ended since
            if cached is not None and cached.expires > time.monotonic():
                return cached.outcome
            flight = self._flights.get(domain)
            leader = flight is None
            if flight is None:
                flight = self._flights[domain] = _Flight()
        if not leader:
            flight.done.wait(max(0.0, deadline - time.monotonic()))
            return flight.outcome if flight.done.is_set() else UNKNOWN
        try:
            outcome, ttl = self._look_up(domain, deadline)
            if outcome == NO_MAIL_HOST and self.canary is not None:
                if not self.canary.passing(wait=deadline - time.monotonic()):
                    outcome, ttl = UNKNOWN, self.failure_ttl
            flight.outcome = outcome
            with self._lock:
                now = time.monotonic()
                self._cache.pop(domain, None)  # stored again: to the end of the order
                self._cache[domain] = _Cached(outcome, now + ttl, now)
                while len(self._cache) > self.cache_size:
                    del self._cache[next(iter(self._cache))]
        finally:
            with self._lock:
                del self._flights[domain]
            flight.done.set()
        return outcome

    def _forget_denials(self, last_passed: float) -> None:
        """Drop the NO_MAIL_HOST outcomes stored since the canary last passed: the resolver
        may have been lying already, and they would outlive the canary's failure."""
        with self._lock:
            doubtful = [domain for domain, cached in self._cache.items() if cached.outcome == NO_MAIL_HOST and cached.stored >= last_passed]
            for domain in doubtful:
                del self._cache[domain]

    def _bounded(self, ttl: float) -> float:
        return min(max(ttl, self.min_ttl), self.max_ttl)

    def _look_up(self, domain: str, deadline: float) -> tuple[str, float]:
        """The outcome and how long to keep it."""
        try:
            mx = self._query(domain, "MX", deadline)
            ttl = mx.chaining_result.minimum_ttl
            if mx.rrset is not None:
                hosts = [record.exchange for record in mx.rrset]
                if len(hosts) == 1 and hosts[0] == dns.name.root:
                    return NULL_MX, self._bounded(ttl)
                return OK, self._bounded(ttl)
            for rdtype in ("A", "AAAA"):
                answer = self._query(domain, rdtype, deadline)
                ttl = min(ttl, answer.chaining_result.minimum_ttl)
                if answer.rrset is not None:
                    return OK, self._bounded(ttl)
            return NO_MAIL_HOST, self._bounded(ttl)
        except dns.resolver.NXDOMAIN as error:
            return NO_MAIL_HOST, self._bounded(_negative_ttl(error))
        except (dns.exception.DNSException, OSError, ValueError):
            return UNKNOWN, self.failure_ttl

    def _query(self, domain: str, rdtype: str, deadline: float) -> dns.resolver.Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout()
        return self.resolver.resolve(domain, rdtype, lifetime=remaining, search=False, raise_on_no_answer=False)


def _negative_ttl(error: dns.resolver.NXDOMAIN) -> float:
    """The SOA's negative-caching TTL of an NXDOMAIN answer (RFC 2308)."""
    for response in error.responses().values():
        try:
            return response.resolve_chaining().minimum_ttl
        except dns.exception.DNSException:
            break
    return dns.message.NEGATIVE_TTL_WITHOUT_SOA


class NullMxChecker:
    """Used when VERIFY_MX_CHECK is off."""

    def check(self, ascii_domain: str) -> str:
        return SKIPPED

    def readiness(self) -> dict[str, str]:
        return {"status": "off"}
