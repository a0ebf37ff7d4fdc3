"""Throughput and latency of POST /v1/assessments under `verify serve`, against a bare-Flask baseline.

Both servers run under gunicorn with the same workers; wrk drives both with the same script
and connections, in the same run. Run: `.venv/bin/python bench/http_bench.py` (needs wrk:
`apt-get install wrk`). PostgreSQL is included when VERIFY_BENCH_POSTGRES_URL is set.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.dns_server import LoopbackDNS  # noqa: E402  (a real DNS server, so MX checks resolve)

VERIFY = Path(sys.executable).with_name("verify")
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


def run_wrk(port: int, *, key: str, duration: int, connections: int, threads: int) -> dict[str, float]:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
        "-s", str(ROOT / "bench" / "signups.lua"), f"http://127.0.0.1:{port}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "KEY": key}, check=True).stdout
    return parse_wrk(output)


def to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {int(p): to_ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": latency[50], "p99": latency[99], "non_2xx": int(errors.group(1)) if errors else 0}


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def measure_baseline(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    server = start(
        [str(GUNICORN), "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench"),
         "baseline_app:create_app()"],
        dict(os.environ),
    )
    try:
        wait_until_up(port, "/nothing")  # a 404 still proves it is up
    except RuntimeError:
        pass
    try:
        return run_wrk(port, key="none", duration=args.duration, connections=args.connections, threads=args.threads)
    finally:
        stop(server)


def fresh_postgres(url: str) -> str:
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("DROP DATABASE IF EXISTS verify_bench WITH (FORCE)"))
        connection.execute(sa.text("CREATE DATABASE verify_bench"))
    admin.dispose()
    return base.set(database="verify_bench").render_as_string(hide_password=False)


def measure_verify(args: argparse.Namespace, database_url: str, nameserver: str) -> dict[str, float]:
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url, "VERIFY_DNS_NAMESERVERS": nameserver}
    key = subprocess.run(
        [str(VERIFY), "keys", "create", "--name", "bench", "--scope", "assess"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    port = free_port()
    server = start([str(VERIFY), "serve", "--port", str(port), "--workers", str(args.workers)], env)
    try:
        wait_until_up(port, "/healthz")
        run_wrk(port, key=key, duration=2, connections=args.connections, threads=args.threads)  # warm caches
        return run_wrk(port, key=key, duration=args.duration, connections=args.connections, threads=args.threads)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    dns = LoopbackDNS().start()
    backends = {"sqlite": None}
    if os.environ.get("VERIFY_BENCH_POSTGRES_URL"):
        backends["postgres"] = fresh_postgres(os.environ["VERIFY_BENCH_POSTGRES_URL"])
    print(f"{args.workers} workers, {args.connections} connections, {args.duration}s per run, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    baseline = measure_baseline(args)
    rows = [("bare Flask (baseline)", baseline)]
    with tempfile.TemporaryDirectory() as scratch:
        for name, url in backends.items():
            url = url or f"sqlite:///{scratch}/bench.db"
            rows.append((f"verify on {name}", measure_verify(args, url, dns.nameserver)))
    dns.stop()

    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}{'ratio':>8}")
    for name, result in rows:
        ratio = result["rps"] / baseline["rps"]
        print(f"{name:<24}{result['rps']:>10.0f}{result['p50']:>10.2f}{result['p99']:>10.2f}{result['non_2xx']:>9}{ratio:>8.2f}")
    if any(result["non_2xx"] for _, result in rows[1:]):
        sys.exit("some requests failed (non-2xx): these figures do not measure assessments")


if __name__ == "__main__":
    main()
