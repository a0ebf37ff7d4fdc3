"""List matching on the assessment path: empty lists (the baseline, measured in the same run)
against 200,000 blocked domains and 100,000 blocked networks; and the stall of a worker's next
request after a one-entry change, from a real SQLite database: the full rebuild every change
used to cost (the baseline, forced in the same run) against the update in place from the
list-change log.

Run on demand, not in the test suite:

    .venv/bin/python bench/lists_bench.py [--signups 2000] [--domains 200000] [--networks 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verify.assessing import Assessor, Signup  # noqa: E402
from verify.engine import identity  # noqa: E402
from verify.engine.decide import judge  # noqa: E402
from verify.engine.lists import ListEntryValue, ListIndex  # noqa: E402
from verify.engine.policy import parse_policy  # noqa: E402
from verify.engine.reasons import default_points  # noqa: E402
from verify.intel.dns import NullMxChecker  # noqa: E402
from verify.intel.providers import Providers  # noqa: E402
from verify.settings import PROJECT_ROOT  # noqa: E402
from verify.store.lists import add_list_entries, delete_list_value, ensure_builtin_lists, get_list, insert_entries  # noqa: E402
from verify.store.policy import add_policy_version  # noqa: E402
from verify.store.stamps import LISTS_STAMP, bump_stamp  # noqa: E402
from verify.store.database import Database  # noqa: E402
from verify.store.snapshots import Snapshots  # noqa: E402

NOW = datetime.now(timezone.utc)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
POLICY = {"thresholds": {"challenge": 40, "deny": 80}}


def random_domain(rng: random.Random) -> str:
    name = "".join(rng.choice(LETTERS) for _ in range(rng.randint(6, 14)))
    return f"{name}.{rng.choice(['com', 'net', 'org', 'io', 'xyz', 'top'])}"


def random_networks(rng: random.Random, count: int) -> list[str]:
    """Distinct IPv4 /16../32 and IPv6 /32../64 networks, host bits clear."""
    found: set[str] = set()
    while len(found) < count:
        if rng.random() < 0.8:
            prefix = rng.choice([16, 20, 24, 24, 24, 28, 32])
            network = ipaddress.ip_network(f"{ipaddress.IPv4Address(rng.getrandbits(32))}/{prefix}", strict=False)
        else:
            prefix = rng.choice([32, 48, 56, 64])
            network = ipaddress.ip_network(f"{ipaddress.IPv6Address(rng.getrandbits(128))}/{prefix}", strict=False)
        found.add(str(network.network_address) if network.num_addresses == 1 else str(network))
    return sorted(found)


def entries(domains: list[str], networks: list[str]) -> list[ListEntryValue]:
    return [ListEntryValue("blocked-domains", "email_domain", "deny", d) for d in domains] + [
        ListEntryValue("blocked-ips", "ip", "deny", n) for n in networks
    ]


def signups(rng: random.Random, count: int, domains: list[str]) -> list[Signup]:
    """A mix of clean signups and signups that hit the lists (a tenth of them, subdomains too)."""
    found = []
    for i in range(count):
        if domains and i % 10 == 0:
            domain = rng.choice(domains)
            domain = f"mail.{domain}" if i % 20 == 0 else domain
        else:
            domain = random_domain(rng)
        ip = str(ipaddress.IPv4Address(rng.getrandbits(32))) if i % 3 else str(ipaddress.IPv6Address(rng.getrandbits(128)))
        found.append(Signup(email=f"user{i}.{rng.randint(1, 9999)}@{domain}", occurred_at=NOW, ip=ip, device_id=f"dev-{i}"))
    return found


def per_signup_microseconds(work: Callable[[], None], count: int, *, rounds: int) -> float:
    """The median over `rounds` runs of the time per signup."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(times)


def assessment_path(assessor: Assessor, policy, people: list[Signup], index: ListIndex) -> tuple[float, float]:
    """(list matching only, the whole in-memory assessment) per signup, in microseconds."""
    gathered = [assessor.gather(signup) for signup in people]
    keyed = [identity.signup_keys(signals, device_id=signup.device_id) for signup, signals in zip(people, gathered)]

    def matching() -> None:
        for signals, keys in zip(gathered, keyed):
            assessor.match_lists(signals, keys, index, now=NOW)

    def whole() -> None:
        for signup in people:
            signals = assessor.gather(signup)
            keys = identity.signup_keys(signals, device_id=signup.device_id)
            judge(assessor.with_lists(signals, assessor.match_lists(signals, keys, index, now=NOW), mx=None), policy)

    matching()  # warm up
    return per_signup_microseconds(matching, len(people), rounds=7), per_signup_microseconds(whole, len(people), rounds=5)


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def stall_after_one_change(domains: list[str], networks: list[str], *, rounds: int) -> dict[str, float]:
    """Seconds: the import; and medians of a one-entry change's write, and of the next request's
    wait for the index, in place and by a full rebuild."""
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{folder}/bench.db")
        database.upgrade()
        snapshots = Snapshots(base_points=default_points())

        def change(work: Callable) -> float:
            def write() -> None:
                with database.transaction() as session:
                    work(get_list("blocked-domains", session=session), session)
            return timed(write)

        def next_request() -> float:
            """What the next assessment of this worker waits for before matching."""
            with database.transaction() as session:
                return timed(lambda: snapshots.current(session=session))

        def import_all() -> None:
            with database.transaction() as session:
                ensure_builtin_lists(session=session)
                add_policy_version(POLICY, actor="bench", session=session)
                insert_entries(get_list("blocked-domains", session=session), domains, source="bench", session=session)
                insert_entries(get_list("blocked-ips", session=session), networks, source="bench", session=session)

        timings = {"import": timed(import_all)}
        next_request()  # the worker's first index
        writes, in_place, rebuilds = [], [], []
        for i in range(rounds):
            value = f"bench-{i}.example"
            for work in (
                lambda list_def, session: add_list_entries(list_def, [value], source="bench", actor="bench", session=session),
                lambda list_def, session: delete_list_value(list_def, value, actor="bench", session=session),
            ):
                writes.append(change(work))
                in_place.append(next_request())
            # The same change, announced by a bare stamp bump as before the change log: the worker
            # cannot tell what changed and rebuilds, as it did after every change.
            change(lambda list_def, session: add_list_entries(list_def, [value], source="bench", actor="bench", session=session))
            next_request()
            with database.transaction() as session:
                bump_stamp(LISTS_STAMP, session=session)
            rebuilds.append(next_request())
            change(lambda list_def, session: delete_list_value(list_def, value, actor="bench", session=session))
            next_request()
        database.dispose()
        timings.update(write=statistics.median(writes), in_place=statistics.median(in_place), rebuild=statistics.median(rebuilds))
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signups", type=int, default=2000)
    parser.add_argument("--domains", type=int, default=200_000)
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="one-entry changes timed each way")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    domains = sorted({random_domain(rng) for _ in range(args.domains * 11 // 10)})[: args.domains]
    networks = random_networks(rng, args.networks)
    people = signups(rng, args.signups, domains)
    providers = Providers.load(PROJECT_ROOT / "data")
    assessor = Assessor(providers=providers, mx_checker=NullMxChecker(), snapshots=Snapshots(base_points=default_points()))
    policy = parse_policy(POLICY, version=1, base_points=default_points())

    all_entries = entries(domains, networks)
    builds = []
    for _ in range(3):
        start = time.perf_counter()
        full = ListIndex(all_entries)
        builds.append(time.perf_counter() - start)
    index_seconds = statistics.median(builds)
    empty = ListIndex([])

    print(f"lists: {len(domains):,} domains, {len(networks):,} networks; {len(people):,} signups, median of rounds")
    base_match, base_whole = assessment_path(assessor, policy, people, empty)
    full_match, full_whole = assessment_path(assessor, policy, people, full)
    print(f"{'':34}{'empty lists':>14}{'full lists':>14}{'ratio':>8}")
    print(f"{'list matching per signup':34}{base_match:>11.1f} us{full_match:>11.1f} us{full_match / base_match:>8.2f}")
    print(f"{'in-memory assessment per signup':34}{base_whole:>11.1f} us{full_whole:>11.1f} us{full_whole / base_whole:>8.2f}")
    hits = sum(1 for s in people if full.match_domain(s.email.rsplit("@", 1)[1], now=NOW))
    print(f"(signups matching a blocked domain: {hits:,})")
    print(f"index build in memory (median of 3): {index_seconds:.2f} s for {len(all_entries):,} entries")

    timings = stall_after_one_change(domains, networks, rounds=args.rounds)
    print(f"SQLite: import {timings['import']:.2f} s; a one-entry change to blocked-domains writes in {timings['write'] * 1000:.1f} ms")
    print(
        f"next request's wait for the index after it (median of {args.rounds}): full rebuild {timings['rebuild']:.2f} s, "
        f"in place {timings['in_place'] * 1000:.1f} ms: {timings['rebuild'] / timings['in_place']:,.0f}x shorter"
    )


if __name__ == "__main__":
    main()
