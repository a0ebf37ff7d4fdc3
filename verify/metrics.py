"""Prometheus metrics: what the service counts, and how it is exposed.

Recording needs no Flask: the DNS and GeoIP readers, the list index and the HTTP layer all
call the small `record_*` functions below. The collectors are made on first use, not at
import, because prometheus-client picks its storage (in memory, or one file per process
under PROMETHEUS_MULTIPROC_DIR) when a value is made; `verify serve` sets that directory
before gunicorn forks, and a worker's first recording must already see it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess, values
from prometheus_client.process_collector import ProcessCollector

from verify.engine.models import VERDICTS
from verify.engine.reasons import CATALOGUE

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: an assessment takes milliseconds; the top buckets show DNS and database stalls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LOOKUP_KINDS = ("dns_mx", "geoip_city", "geoip_asn", "geoip_anonymous")
# The MX check's outcomes (verify.intel.dns.OUTCOMES): a closed set, every one shown from the start.
DNS_OUTCOMES = ("ok", "null_mx", "no_mail_host", "unknown")
# The processes `verify serve` keeps running beside its workers (verify/children.py), by label.
BACKGROUND_PROCESSES = ("sqlite_writer", "webhook_deliveries", "revision_jobs")
REVISION_JOB_OUTCOMES = ("retried", "set_aside")

# Labels come from closed sets: a label taken from the request (a junk method, a status no
# route sends) would give an attacker one new series per request, without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


@dataclass(frozen=True)
class Collectors:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    verdicts: Counter
    reasons: Counter
    lookups: Counter
    list_entries: Gauge
    dns_lookups: Counter
    dns_canary_ok: Gauge
    database_errors: Counter
    geoip_built: Gauge
    background_restarts: Counter
    revision_job_failures: Counter
    # Labelled children by label values, made once: `.labels()` costs several times what an
    # increment does. Bounded like the series themselves: every label comes from a closed set.
    children: dict[tuple, Any] = field(default_factory=dict, compare=False, repr=False)

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, made on the first call and looked up after."""
        found = self.children.get((metric, values))
        if found is None:
            found = self.children[(metric, values)] = metric.labels(*values)
        return found


_lists_lock = threading.Lock()
_known_lists: set[str] = set()


@cache
def collectors() -> Collectors:
    """The process's collectors, made on first use (after gunicorn forked, under `verify serve`)."""
    if multiprocess_dir() and values.ValueClass is values.MutexValue:
        # prometheus-client chose in-memory values when it was imported, before `verify serve`
        # named the directory; choose again so that this worker writes its own files.
        values.ValueClass = values.get_value_class()
    registry = CollectorRegistry(auto_describe=True)
    if not multiprocess_dir():
        ProcessCollector(registry=registry)
    made = Collectors(
        registry=registry,
        requests=Counter(
            "verify_http_requests_total", "HTTP requests answered, by route (URL rule) and status.",
            ["method", "route", "status"], registry=registry,
        ),
        latency=Histogram(
            "verify_http_request_duration_seconds", "Time to answer an HTTP request, by route and status.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        verdicts=Counter("verify_assessments_total", "Stored assessments, by verdict.", ["verdict"], registry=registry),
        reasons=Counter("verify_reasons_total", "Reasons fired in stored assessments, by code.", ["code"], registry=registry),
        lookups=Counter(
            "verify_lookups_total", "Outside-knowledge lookups (DNS MX, GeoIP), by kind and outcome (ok or failure).",
            ["kind", "outcome"], registry=registry,
        ),
        list_entries=Gauge(
            "verify_list_entries", "Entries per list in the index, set when the index is rebuilt.",
            ["list"], registry=registry, multiprocess_mode="livemostrecent",
        ),
        dns_lookups=Counter(
            "verify_dns_lookups_total", "MX checks (cached outcomes included), by outcome: ok, null_mx, no_mail_host, unknown.",
            ["outcome"], registry=registry,
        ),
        # Labelled by the one configured name so that there is no sample (rather than a false
        # 0) before the first lookup or with the canary off; livemin: under gunicorn each worker
        # has its own canary, and one failing worker shows 0.
        dns_canary_ok=Gauge(
            "verify_dns_canary_ok", "1 while the DNS canary (VERIFY_DNS_CANARY) resolves, 0 while it fails "
            "(NXDOMAIN and empty answers then read unknown).", ["canary"], registry=registry, multiprocess_mode="livemin",
        ),
        database_errors=Counter(
            "verify_database_errors_total", "Requests answered 503 because the database did not answer.", registry=registry,
        ),
        # livemin: under gunicorn each worker opens the file itself; the oldest copy still
        # serving is the one a staleness alert must see.
        geoip_built=Gauge(
            "verify_geoip_build_timestamp_seconds", "Build time (Unix seconds, from the file's metadata) of the GeoIP "
            "database serving each role (city, asn, anonymous).", ["role"], registry=registry, multiprocess_mode="livemin",
        ),
        background_restarts=Counter(
            "verify_background_restarts_total", "Background processes of `verify serve` started again after they died, "
            "by process: sqlite_writer, webhook_deliveries, revision_jobs.", ["process"], registry=registry,
        ),
        revision_job_failures=Counter(
            "verify_revision_job_failures_total", "Revision job batches that failed, by what became of the job: "
            "retried (later, each time twice as late) or set_aside (until `verify revisions retry`).",
            ["outcome"], registry=registry,
        ),
    )
    # Every series of a closed set exists from the start at zero, so that rates and alerts
    # work before the first signup (a series that appears later hides its first increment).
    for outcome in DNS_OUTCOMES:
        made.dns_lookups.labels(outcome=outcome)
    for verdict in VERDICTS:
        made.verdicts.labels(verdict=verdict)
    for code in CATALOGUE:
        made.reasons.labels(code=code)
    for kind in LOOKUP_KINDS:
        for outcome in ("ok", "failure"):
            made.lookups.labels(kind=kind, outcome=outcome)
    for process in BACKGROUND_PROCESSES:
        made.background_restarts.labels(process=process)
    for outcome in REVISION_JOB_OUTCOMES:
        made.revision_job_failures.labels(outcome=outcome)
    return made


def record_request(*, method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request; `route` is the URL rule (or "unmatched"), never the raw path."""
    metrics = collectors()
    key = (method if method in METHODS else OTHER, route, status if 100 <= status <= 599 else OTHER)
    series = metrics.children.get(key)
    if series is None:
        labels = (key[0], route, str(key[2]))
        series = metrics.children[key] = (metrics.requests.labels(*labels), metrics.latency.labels(*labels))
    series[0].inc()
    series[1].observe(seconds)


def record_assessment(verdict: str, reason_codes: Iterable[str]) -> None:
    """Count one stored assessment and each reason that fired in it."""
    metrics = collectors()
    metrics.child(metrics.verdicts, verdict).inc()
    for code in reason_codes:
        metrics.child(metrics.reasons, code).inc()


def record_lookup(kind: str, *, ok: bool) -> None:
    """Count one lookup of outside knowledge, e.g. `record_lookup("geoip_city", ok=True)`.

    A lookup that found nothing is still ok; a failure is a timeout, a server error or an
    unreadable database: what makes a signal read "unknown".
    """
    metrics = collectors()
    metrics.child(metrics.lookups, kind, "ok" if ok else "failure").inc()


def record_dns_lookup(outcome: str) -> None:
    """Count one MX check by its outcome, one of DNS_OUTCOMES."""
    if outcome not in DNS_OUTCOMES:
        raise ValueError(f"unknown DNS outcome {outcome!r}")
    metrics = collectors()
    metrics.child(metrics.dns_lookups, outcome).inc()


def set_dns_canary(canary: str, *, ok: bool) -> None:
    """Publish the latest lookup of the canary: 1 when it resolved, 0 when it failed."""
    collectors().dns_canary_ok.labels(canary=canary).set(1 if ok else 0)


def record_revision_job_failure(*, set_aside: bool) -> None:
    """Count one failed batch of a revision job: retried later, or the job set aside."""
    collectors().revision_job_failures.labels(outcome="set_aside" if set_aside else "retried").inc()


def record_database_error() -> None:
    """Count one request answered 503 because the database did not answer."""
    collectors().database_errors.inc()


def record_background_restart(what: str) -> None:
    """Count one background process started again after it died, by its name ("revision jobs",
    labelled revision_jobs: one of BACKGROUND_PROCESSES)."""
    process = what.lower().replace(" ", "_")
    if process not in BACKGROUND_PROCESSES:
        raise ValueError(f"unknown background process {what!r}")
    collectors().background_restarts.labels(process=process).inc()


def set_geoip_build(role: str, build_epoch: int) -> None:
    """Publish the build time of the GeoIP file now serving `role`."""
    collectors().geoip_built.labels(role=role).set(build_epoch)


def set_list_sizes(sizes: Mapping[str, int]) -> None:
    """Publish the entry count of every list; lists seen before and now absent read 0."""
    gauge = collectors().list_entries
    with _lists_lock:
        for name in _known_lists - set(sizes):
            gauge.labels(list=name).set(0)
        for name, size in sizes.items():
            gauge.labels(list=name).set(size)
        _known_lists.update(sizes)


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process, or of every worker under gunicorn."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(collectors().registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's child_exit hook calls this)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
