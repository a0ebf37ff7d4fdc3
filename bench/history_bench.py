"""Does the cost of an assessment grow with the history? Time assessments over 10,000 and 1,000,000 stored ones.

Run on demand (not part of the suite):

    .venv/bin/python bench/history_bench.py                      # SQLite files in a temporary directory
    .venv/bin/python bench/history_bench.py --database-url postgresql://postgres@127.0.0.1:5432/bench

The synthetic history arrives at one steady rate (10,000 signups a day), so a bigger table is a
longer past, as in production; it has hot keys on purpose: a third of all signups from one ASN,
half of them on gmail.com, a busy carrier /24. Each run assesses the same signups through
`Assessor.judge_signup` and `record` (history counts, first seen, reputation, judge, insert) right after the stored
history ends, and reports the median and 95th percentile of two phases; the target is a ratio within 1.2x:

- cold: the first 300 signups one fresh process judges (after 20 that warm the policy
  snapshot): each busy key met for the first time is walked in SQL, then loaded into the
  process's memory (store/recent.py), once;
- warm: 300 more after `--warm-up` (2,000) further signups of the same traffic, as a
  process serving for a while meets them. Every signup judged is also stored.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verify.app import default_policy  # noqa: E402
from verify.assessing import Assessor, Signup  # noqa: E402
from verify.engine import identity  # noqa: E402
from verify.engine.reasons import default_points  # noqa: E402
from verify.intel.dns import NullMxChecker  # noqa: E402
from verify.intel.providers import Providers, disposable_seed  # noqa: E402
from verify.settings import Settings  # noqa: E402
from verify.store.bootstrap import bootstrap  # noqa: E402
from verify.store.database import Database  # noqa: E402
from verify.store.models import Assessment  # noqa: E402
from verify.store.driver import Driver  # noqa: E402
from verify.store.recent import RecentIndex  # noqa: E402
from verify.store.snapshots import Snapshots  # noqa: E402
from verify.stages import Stages  # noqa: E402

PER_DAY = 10_000
END = datetime(2026, 6, 1, tzinfo=timezone.utc)
HOT_ASN, CARRIER_NET = 64500, "100.64.7"
FIRST_WARM_UP = 20  # signups judged before any is timed: the policy snapshot and the caches


def synthetic_signup(rng: random.Random, n: int) -> dict:
    """One stored signup's keys: hot ASN and carrier network, gmail, corporate domains, phones."""
    roll = rng.random()
    if roll < 0.05:
        ip = f"{CARRIER_NET}.{rng.randint(1, 8)}"
        asn = HOT_ASN
    elif roll < 0.33:
        ip = f"81.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        asn = HOT_ASN
    else:
        ip = f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        asn = rng.randint(1000, 1500)
    if rng.random() < 0.5:
        domain, local = "gmail.com", f"user{n}"
    else:
        domain, local = f"company{rng.randint(1, 3000)}.example", f"staff.{rng.choice('abcdefgh')}{n % 997}"
    email = f"{local}@{domain}"
    canonical = email.replace(".", "", local.count(".")) if domain == "gmail.com" else email
    phone = f"+1{rng.randint(2000000000, 9999999999)}" if rng.random() < 0.4 else None
    return {
        "email": email,
        "email_canonical": canonical,
        "email_domain": domain,
        "local_template": identity.local_template(canonical.split("@")[0]),
        "phone": phone,
        "phone_e164": phone,
        "phone_block": phone[:-3] if phone else None,
        "ip": ip,
        "ip_network": identity.ip_network(ip),
        "asn": asn,
        "device_id": f"dev-{rng.randint(0, 5 * PER_DAY)}",
    }


def fill(database: Database, size: int, *, seed: int = 7) -> None:
    """Bulk-insert `size` assessments ending at END, PER_DAY a day, with executemany in chunks."""
    rng = random.Random(seed)
    span = timedelta(days=size / PER_DAY)
    table = Assessment.__table__
    chunk: list[dict] = []
    started = time.perf_counter()
    with database.engine.begin() as connection:
        for n in range(size):
            occurred_at = END - span + span * (n / size)
            keys = synthetic_signup(rng, n)
            verdict = "deny" if rng.random() < 0.03 else "allow"
            chunk.append({
                "id": str(uuid.UUID(int=rng.getrandbits(128))), "created_at": occurred_at, "occurred_at": occurred_at,
                "verdict": verdict, "score": 0, "policy_version": 1, "api_key_id": None, "idempotency_key": None,
                "request_hash": None, "country": None, "user_agent": None, "external_id": None, "metadata": None,
                "reasons": [], "signals": {}, **keys,
            })
            if len(chunk) == 20_000:
                connection.execute(table.insert(), chunk)
                chunk.clear()
        if chunk:
            connection.execute(table.insert(), chunk)
    if database.dialect == "sqlite":
        with database.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE assessments")
    print(f"  inserted {size:,} rows in {time.perf_counter() - started:.1f}s", flush=True)


def probes(count: int) -> list[Signup]:
    """The signups timed: the same for every size, hitting hot keys and cold ones."""
    rng = random.Random(99)
    signups = []
    for n in range(count):
        keys = synthetic_signup(rng, 10_000_000 + n)
        signups.append(Signup(
            email=keys["email"], phone=keys["phone"], ip=keys["ip"], device_id=keys["device_id"],
            occurred_at=END + timedelta(seconds=n),
        ))
    return signups


class BenchAssessor(Assessor):
    """Sets the ASN as the GeoIP reader will, so that the hot ASN is counted."""

    def gather(self, signup):
        signals = super().gather(signup)
        if signup.ip:
            signals["ip"]["asn"] = HOT_ASN if signup.ip.startswith(("81.", CARRIER_NET)) else int(signup.ip.split(".")[0]) + 1000
        return signals


def time_assessments(database: Database, signups: list[Signup], settings: Settings, *,
                     timed: set[int]) -> tuple[list[float], list[float], RecentIndex]:
    """Milliseconds per whole assessment, and per history lookup (counts, first seen, reputation),
    of the signups at the positions in `timed`; all of them are judged and stored, in order. Also
    the process's busy keys kept in memory at the end."""
    assessor = BenchAssessor(
        providers=Providers.load(settings.data_dir), mx_checker=NullMxChecker(), snapshots=Snapshots(base_points=default_points())
    )
    timings, lookups = [], []
    for index, signup in enumerate(signups):
        with database.transaction() as session:
            started = time.perf_counter()
            stages = Stages(enabled=True)
            driver = Driver.of_session(session)
            judged = assessor.judge_signup(signup, driver=driver, session=lambda: session, now=END + timedelta(hours=1), stages=stages)
            assessor.record(judged, driver=driver, deliveries=[])
            elapsed = time.perf_counter() - started
        if index in timed:
            timings.append(elapsed * 1000)
            lookups.append(stages.spent["history"] * 1000)
    return timings, lookups, assessor.recent


def prepare(url: str, settings: Settings) -> Database:
    database = Database(url)
    if database.dialect != "sqlite":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    database.upgrade()
    with database.transaction() as session:
        bootstrap(session=session, default_policy=default_policy(settings), disposable=disposable_seed())
    return database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--assessments", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=2_000,
                        help="signups judged between the cold and the warm measurement (default 2,000)")
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is dropped!); default: SQLite files")
    args = parser.parse_args()
    settings = Settings()
    count = args.assessments
    # The first FIRST_WARM_UP warm the policy snapshot; then `cold`, a fresh process's first
    # signups, which load each busy key they meet into memory; `warm` after --warm-up more.
    cold = range(FIRST_WARM_UP, FIRST_WARM_UP + count)
    warm = range(cold.stop + args.warm_up, cold.stop + args.warm_up + count)
    signups = probes(warm.stop)
    results: dict[str, dict[int, tuple[float, float]]] = {"cold": {}, "warm": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            url = args.database_url or f"sqlite:///{tmp}/bench-{size}.db"
            print(f"{size:,} stored assessments ({url.split(':')[0]})", flush=True)
            database = prepare(url, settings)
            fill(database, size)
            timings, lookups, kept = time_assessments(database, signups, settings, timed=set(cold) | set(warm))
            database.dispose()
            for phase, part in (("cold", slice(0, count)), ("warm", slice(count, None))):
                whole, history = timings[part], lookups[part]
                results[phase][size] = (statistics.median(whole), statistics.median(history))
                print(
                    f"  {phase}: per assessment median {statistics.median(whole):.2f} ms, p95 "
                    f"{statistics.quantiles(whole, n=20)[18]:.2f} ms; history lookups median {statistics.median(history):.2f} ms",
                    flush=True,
                )
            # Busy keys found in SQL but given no place are walked there on every signup.
            print(f"  in memory at the end: {len(kept.entries)} busy keys, {kept.rows:,} rows; "
                  f"{len(kept.wanted)} more busy keys left to SQL", flush=True)
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        for phase, by_size in results.items():
            whole, history = (by_size[large][i] / by_size[small][i] for i in (0, 1))
            print(f"{phase}: ratio {large:,} / {small:,}: whole assessment {whole:.2f}x, history lookups {history:.2f}x "
                  "(target within 1.2x)")


if __name__ == "__main__":
    main()
