"""The per-request cost of what wraps every answer: the access log line, the metrics, the JSON
of the response and of the request, and an MX cache hit; in process, beside bare Flask.

Each figure is the best of a few `timeit` repeats, in microseconds per request, measured in the
same run as the baseline: a bare Flask app answering a JSON POST through the test client (the
in-process counterpart of bench/baseline_app.py). The assessment body is a real answer of the
service for a full signup (GeoIP files built for the run, MX through a loopback DNS server).
Run: `.venv/bin/python bench/request_overhead_bench.py` (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from baseline_app import create_app as create_baseline_app  # noqa: E402
from tests.support import mmdb  # noqa: E402
from tests.support.dns_server import LoopbackDNS  # noqa: E402
from verify import logs, metrics  # noqa: E402
from verify.api import instrumentation  # noqa: E402
from verify.app import create_app  # noqa: E402
from verify.intel.dns import MxChecker  # noqa: E402
from verify.settings import Settings  # noqa: E402

VERIFY = Path(sys.executable).with_name("verify")
SIGNUP = {
    "email": "jane.doe+promo@acme-corp.io",
    "phone": "+14155550123",
    "ip": "81.2.69.142",
    "country": "GB",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0",
    "device_id": "dev-4242",
    "external_id": "acct-77",
    "metadata": {"campaign": "spring"},
}
REASON_CODES = ("email.free_provider", "network.datacenter", "phone.voip")


def per_call_us(function: Callable[[], object], *, number: int, repeat: int) -> float:
    """The best of `repeat` runs of `number` calls, in microseconds per call."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def quiet_logging() -> None:
    """The service's own JSON handler, writing to /dev/null (what is measured is making the line)."""
    handler = logs.json_handler(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives as long as the run)
    logging.getLogger().addHandler(handler)  # named like configure_logging's: it adds no second one
    logging.getLogger("verify").setLevel(logging.INFO)  # as configure_logging sets it


def real_app(folder: Path, nameserver: str):
    """The service on a fresh SQLite file, with an assess key made by the CLI."""
    url = f"sqlite:///{folder / 'bench.db'}"
    geoip = {
        "geoip_city_db": str(mmdb.write_mmdb(folder / "GeoIP2-City.mmdb", "GeoIP2-City", mmdb.CITY)),
        "geoip_asn_db": str(mmdb.write_mmdb(folder / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", mmdb.ASN)),
        "geoip_anonymous_db": str(mmdb.write_mmdb(folder / "GeoIP2-Anonymous-IP.mmdb", "GeoIP2-Anonymous-IP", mmdb.ANONYMOUS)),
    }
    env = {**os.environ, "VERIFY_DATABASE_URL": url}
    secret = subprocess.run(
        [str(VERIFY), "keys", "create", "--name", "bench", "--scope", "assess"], env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    settings = Settings(database_url=url, dns_nameservers=(nameserver,), dns_timeout=1.0, dns_canary=None, **geoip)
    return create_app(settings), {"Authorization": f"Bearer {secret}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--in-memory", action="store_true", help="metrics in memory, not in files as under `verify serve`")
    args = parser.parse_args()
    if not args.in_memory:
        # What `verify serve` does: every worker writes its metrics to files in this directory.
        os.environ[metrics.MULTIPROC_ENV] = tempfile.mkdtemp(prefix="verify-bench-metrics-")
    n, r = args.number, args.repeat
    quiet_logging()
    dns = LoopbackDNS().start()
    rows: list[tuple[str, float]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            app, headers = real_app(Path(scratch), dns.nameserver)
            client = app.test_client()
            answer = client.post("/v1/assessments", json=SIGNUP, headers=headers)
            assert answer.status_code == 201, answer.get_data(as_text=True)
            body = answer.get_json()
            request_bytes = json.dumps(SIGNUP).encode()

            bare = create_baseline_app().test_client()
            baseline = per_call_us(lambda: bare.post("/v1/assessments", json={"email": "x@example.com"}), number=n // 4, repeat=r)
            rows.append(("bare Flask POST, test client (baseline)", baseline))
            rows.append(("verify GET /healthz, test client", per_call_us(lambda: client.get("/healthz"), number=n // 4, repeat=r)))

            # The access log line, through the after_request hook itself, for a matched route.
            with app.test_request_context("/v1/assessments", method="POST", headers={"X-Request-Id": "req-42"}):
                logs._begin()
                response = app.json.response(body)
                response.status_code = 201
                rows.append(("access log line (after_request hook)", per_call_us(lambda: logs._finish(response), number=n, repeat=r)))

                # Metrics of one assessment: the request (count and latency), the verdict and its
                # reasons, the MX lookup (two counters): what one POST records.
                instrumentation._start()
                rows.append(("metrics: request hook", per_call_us(lambda: instrumentation._record(response), number=n, repeat=r)))

            def assessment_metrics() -> None:
                metrics.record_request(method="POST", route="/v1/assessments", status=201, seconds=0.004)
                metrics.record_assessment("allow", REASON_CODES)
                metrics.record_lookup("dns_mx", ok=True)
                metrics.record_dns_lookup("ok")

            rows.append(("metrics: one assessment's 8 updates", per_call_us(assessment_metrics, number=n, repeat=r)))
            child = metrics.collectors().verdicts.labels(verdict="allow")
            rows.append(("  floor: one Prometheus inc()", per_call_us(child.inc, number=n, repeat=r)))

            with app.app_context():
                size = len(app.json.response(body).get_data())
                rows.append((f"response JSON, {size} bytes (app.json.response)", per_call_us(lambda: app.json.response(body), number=n, repeat=r)))
            rows.append((f"request JSON, {len(request_bytes)} bytes (app.json.loads)", per_call_us(lambda: app.json.loads(request_bytes), number=n, repeat=r)))

            checker = MxChecker(timeout=1.0, nameservers=(dns.nameserver,), canary=None)
            checker.check("acme-corp.io")
            rows.append(("MX check, cache hit (with its metrics)", per_call_us(lambda: checker.check("acme-corp.io"), number=n, repeat=r)))
            rows.append(("  of which the cache lookup", per_call_us(lambda: checker._outcome("acme-corp.io"), number=n, repeat=r)))
            app.extensions["verify"].database.dispose()
    finally:
        dns.stop()

    mode = "in memory" if args.in_memory else "multiprocess files, as under `verify serve`"
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; best of {r} x {n} calls; metrics {mode}")
    print(f"{'what':<52}{'us/request':>12}{'x baseline':>12}")
    for name, cost in rows:
        print(f"{name:<52}{cost:>12.1f}{cost / baseline:>12.3f}")


if __name__ == "__main__":
    main()
