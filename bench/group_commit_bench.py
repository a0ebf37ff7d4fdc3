"""SQLite group commit (verify/store/group_commit.py) against each process committing its own.

N processes insert assessment rows (the real schema, its indexes, signals of about 1.5 KB as
an assessment stores them), one row per transaction as the hot path writes them: either
straight into the database with the pragmas of store/database.py, or through one writer
process that commits every waiting request together. Each mode runs for the same time in
the same run; rows/s, the median and p99 of one write, and the ratio to the direct mode
with the same `synchronous` are printed.

Run: `.venv/bin/python bench/group_commit_bench.py [--processes 4] [--seconds 5] [--synchronous full,normal]`
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verify.store.assessments import INSERT_ASSESSMENT  # noqa: E402
from verify.store.database import Database  # noqa: E402
from verify.store.driver import json_text, sqlite_moment  # noqa: E402
from verify.store.group_commit import Client, connect_database  # noqa: E402

SIGNALS = json_text({f"signal_{n}": {"value": "x" * 40, "score": n, "source": "bench"} for n in range(20)})


def row(tag: str, n: int) -> dict:
    at = sqlite_moment(datetime.now(timezone.utc))
    email = f"{tag}.{n}@example-mail.com"
    return {
        "id": f"a_{tag}_{n}", "created_at": at, "occurred_at": at, "verdict": "allow", "score": 5, "policy_version": 1,
        "api_key_id": None, "idempotency_key": f"{tag}-{n}", "request_hash": "h" * 64, "email": email,
        "email_canonical": email, "email_domain": "example-mail.com", "local_template": "a.9", "phone": None,
        "phone_e164": f"+4420{n:08d}", "phone_block": f"+4420{n // 100:06d}", "ip": f"10.{n % 250}.{n // 250 % 250}.1",
        "ip_network": f"10.{n % 250}.0.0/16", "asn": 64500 + n % 20, "country": "GB", "device_id": f"dev-{tag}-{n}",
        "payment_fingerprint": None, "user_agent": "Mozilla/5.0 bench", "external_id": f"{tag}-{n}",
        "metadata": None, "reasons": "[]", "signals": SIGNALS,
    }


def load(mode: str, database: str, synchronous: str, socket_path: str, tag: str, start: float, seconds: float) -> list[float]:
    """One process: write rows until `seconds` after `start`; the latency of each write, in seconds."""
    if mode == "direct":
        connection = connect_database(database, synchronous)
        connection.isolation_level = ""  # the sqlite3 module's own BEGIN before a write, as the workers' connections

        def write(batch):
            for sql, rows in batch:
                connection.executemany(sql, rows)
            connection.commit()
    else:
        write = Client(socket_path).write
    while time.time() < start:
        time.sleep(0.001)
    latencies, n = [], 0
    end = start + seconds
    while (began := time.perf_counter()) and time.time() < end:
        write([(INSERT_ASSESSMENT, [row(tag, n)])])
        latencies.append(time.perf_counter() - began)
        n += 1
    return latencies


def run(mode: str, synchronous: str, processes: int, seconds: float, workdir: Path, template: Path) -> dict:
    database = workdir / f"{mode}-{synchronous}.db"
    shutil.copy(template, database)
    socket_path = str(workdir / f"{mode}-{synchronous}.sock")
    writer = None
    if mode == "writer":
        writer = subprocess.Popen([sys.executable, "-m", "verify.store.group_commit", str(database), socket_path, synchronous], cwd=ROOT)
        while not os.path.exists(socket_path):
            time.sleep(0.01)
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            start = time.time() + 1.5  # every process connected and waiting
            args = [(mode, str(database), synchronous, socket_path, f"p{p}", start, seconds) for p in range(processes)]
            latencies = [latency for result in pool.starmap(load, args) for latency in result]
    finally:
        if writer is not None:
            writer.terminate()
            writer.wait()
    latencies.sort()
    return {
        "mode": mode, "synchronous": synchronous, "rows": len(latencies), "rate": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000, "p99": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--synchronous", default="full,normal")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verify-gc-bench-") as directory:
        workdir = Path(directory)
        template = workdir / "template.db"
        migrated = Database(f"sqlite:///{template}")
        migrated.upgrade()
        with migrated.engine.connect() as connection:  # all in the main file, which each run copies
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        migrated.dispose()
        print(f"{options.processes} processes, {options.seconds:g} s each run, one assessment row per write")
        print(f"{'synchronous':<12}{'mode':<8}{'rows':>8}{'rows/s':>9}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}")
        for synchronous in options.synchronous.split(","):
            direct = None
            for mode in ("direct", "writer"):
                result = run(mode, synchronous, options.processes, options.seconds, workdir, template)
                direct = direct or result["rate"]
                print(f"{synchronous:<12}{mode:<8}{result['rows']:>8}{result['rate']:>9.0f}{result['rate'] / direct:>7.2f}"
                      f"{result['p50']:>8.2f}{result['p99']:>8.2f}")


if __name__ == "__main__":
    main()
