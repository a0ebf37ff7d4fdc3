"""Throughput and latency of POST /v1/assessments under `verify serve`, against a bare-Flask baseline.

Both servers run under gunicorn with the same workers; wrk drives them with the same
connections, in the same run, and every row shows its throughput as a ratio to the bare-Flask
baseline of that run. Each backend runs two loads (bench/loads.py): `honest`, distinct
signups (bench/signups.lua), and `campaign`, what a farm sends (bench/campaign.lua), each on
a fresh database. SQLite's honest load runs once per `--sqlite-synchronous` value
(VERIFY_SQLITE_SYNCHRONOUS), its campaign with the first value.

Two more rows measure the floor under an assessment on the same settings: bench/floor_app.py,
the library calls an assessment makes and one durable write (SQLite with the first
`--sqlite-synchronous` value, and PostgreSQL), nothing else. No design of verify can pass its
floor's ratio; how close it comes is what is left to win.

After each wrk run the benchmark sends 300 requests of the same load itself, one at a time,
and prints the median of each stage the service names in its Server-Timing header and each
stage's share of the stage time. The services run with VERIFY_SERVER_TIMING=true for every
run, so that the throughput rows and the breakdown come from the same configuration; the
header costs a few microseconds per request.

A second table gives each row's CPU per request during its measured run, read from /proc
(bench/cpu_use.py): the server's process group, the PostgreSQL server's processes and wrk,
and how busy the cores were, so that a ratio comes with where its time went.

On PostgreSQL the round trips per assessment are counted by a proxy
(tests/support/pg_proxy.py) on a second server started after the measured one, on the same
database: 300 more requests through it, after 50 that warm its workers, with the server's
background processes (deliveries, revision jobs) off. The measured run goes straight to
PostgreSQL, so the proxy's own cost is in no throughput or latency figure.

On this kind of machine the same code measures 10 to 15% apart from one run to the next, as
the machine's speed drifts. `--repeat N` measures everything N times, in rounds (the baseline,
the floors, then every row, each round on fresh databases), and prints the medians: a row's
ratio is the median of its ratios to the baseline of the same round, so a drift between
rounds cancels out, and the range of those ratios shows what is left of the noise. Compare
two versions of the code with the same `--repeat` (3 or more).

Run: `.venv/bin/python bench/http_bench.py` (needs wrk: `apt-get install wrk`). PostgreSQL
is included when VERIFY_BENCH_POSTGRES_URL is set (each run on that server recreates the
database `verify_bench`, and the last one is left for inspection).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_use import CpuMeter  # noqa: E402
from bench.engine_bench import build_geoip  # noqa: E402
from bench.loads import LOADS, Load, Signup  # noqa: E402
from tests.support.dns_server import LoopbackDNS  # noqa: E402  (a real DNS server, so MX checks resolve)
from tests.support.pg_proxy import PostgresProxy  # noqa: E402

VERIFY = Path(sys.executable).with_name("verify")
GUNICORN = Path(sys.executable).with_name("gunicorn")

STAGES = ("auth", "validation", "gather", "lists", "history", "judge", "record", "commit", "respond", "logging")
SAMPLE_SIZE = 300
ROUND_TRIP_WARM_UP = 50
SYNCHRONOUS_VALUES = ("full", "normal")
# Python-made signups use thread ids of their own, so their emails and devices are not wrk's.
STAGE_SAMPLE_THREAD, ROUND_TRIP_THREAD = 90, 91


# -- Server-Timing (https://www.w3.org/TR/server-timing/) -----------------------------------

TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = r'"(?:[^"\\]|\\.)*"'
ENTRY = re.compile(rf'(?:{QUOTED}|[^,"])+')
NAME = re.compile(rf"\s*({TOKEN})")
PARAMETER = re.compile(rf"\s*;\s*({TOKEN})\s*(?:=\s*({QUOTED}|{TOKEN}))?")


def parse_server_timing(header: str) -> list[tuple[str, float]]:
    """Each metric's name and duration in ms, in order; a missing or bad `dur` is 0 (W3C)."""
    metrics = []
    for entry in ENTRY.findall(header):
        name = NAME.match(entry)
        if not name:
            continue  # an empty or malformed entry: the spec says to skip it
        metrics.append((name.group(1), duration_of(entry[name.end():])))
    return metrics


def duration_of(parameters: str) -> float:
    for match in PARAMETER.finditer(parameters):
        if match.group(1).lower() == "dur":  # the first `dur` counts; parameter names ignore case
            try:
                return float((match.group(2) or "").strip('"'))
            except ValueError:
                return 0.0
    return 0.0


def stage_durations(header: str) -> dict[str, float]:
    """Milliseconds per stage name; a name given twice is summed."""
    durations: dict[str, float] = {}
    for name, duration in parse_server_timing(header):
        durations[name] = durations.get(name, 0.0) + duration
    return durations


# -- wrk ---------------------------------------------------------------------------------

def run_wrk(port: int, *, key: str, script: Path, duration: int, args: argparse.Namespace,
            server_group: int | None = None) -> dict[str, float]:
    """wrk's figures; with the server's process group, also the CPU per request (bench/cpu_use.py)."""
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency",
        "-s", str(script), f"http://127.0.0.1:{port}",
    ]
    meter = CpuMeter(server_group) if server_group is not None else None
    output = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "KEY": key}, check=True).stdout
    result = parse_wrk(output)
    if meter is not None:
        result.update(meter.per_request(int(result["requests"])))
    return result


def to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {int(p): to_ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = int(re.search(r"^\s+(\d+) requests in", output, re.M).group(1))
    return {"rps": rps, "p50": latency[50], "p99": latency[99], "non_2xx": int(errors.group(1)) if errors else 0,
            "requests": requests}


# -- requests sent by the benchmark itself -----------------------------------------------

@dataclass
class Sample:
    """What `SAMPLE_SIZE` one-at-a-time requests showed: stage timings and client wall times."""

    stages: list[dict[str, float]] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    failures: int = 0


def send_signups(port: int, key: str, signups: list[Signup]) -> Sample:
    """POST each signup on one keep-alive connection (reopened when the server closes it)."""
    sample = Sample()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        for signup in signups:
            started = time.perf_counter()
            connection.request("POST", "/v1/assessments", body=json.dumps(signup), headers=headers)
            response = connection.getresponse()
            response.read()
            sample.wall_ms.append((time.perf_counter() - started) * 1000)
            if response.status >= 300:
                sample.failures += 1
            if response.getheader("Server-Timing"):
                sample.stages.append(stage_durations(response.getheader("Server-Timing")))
    finally:
        connection.close()
    return sample


def summarise_stages(stages: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per stage: its median in ms (0 where a request did not name it) and its share of all stage time."""
    names = [name for name in STAGES if any(name in timing for timing in stages)]
    names += sorted({name for timing in stages for name in timing} - set(names))
    total = sum(sum(timing.values()) for timing in stages) or 1.0
    return {
        name: (statistics.median(timing.get(name, 0.0) for timing in stages),
               sum(timing.get(name, 0.0) for timing in stages) / total)
        for name in names
    }


# -- servers -----------------------------------------------------------------------------

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
        except urllib.error.HTTPError:
            return  # any answer proves it is up
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@contextmanager
def verify_server(database_url: str, *, settings: dict[str, str], workers: int,
                  key_name: str = "bench") -> Iterator[tuple[int, str, int]]:
    """A `verify serve` on a free port with a new assess key (names are unique per database):
    yields (port, key, the server's process group)."""
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url, "VERIFY_SERVER_TIMING": "true", **settings}
    key = subprocess.run(
        [str(VERIFY), "keys", "create", "--name", key_name, "--scope", "assess"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    port = free_port()
    server = start([str(VERIFY), "serve", "--port", str(port), "--workers", str(workers)], env)
    try:
        wait_until_up(port, "/healthz")
        yield port, key, server.pid  # started in a session of its own: its pid is its group's
    finally:
        stop(server)


def measure_bench_app(app: str, args: argparse.Namespace, env: dict[str, str] | None = None) -> dict[str, float]:
    """An app of bench/ under gunicorn with verify's workers, driven by the honest load."""
    port = free_port()
    server = start(
        [str(GUNICORN), "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench"),
         f"{app}:create_app()"],
        {**os.environ, **(env or {})},
    )
    try:
        wait_until_up(port, "/nothing")
        run_wrk(port, key="none", script=LOADS["honest"].script, duration=2, args=args)  # warm caches
        return run_wrk(port, key="none", script=LOADS["honest"].script, duration=args.duration, args=args,
                       server_group=server.pid)
    finally:
        stop(server)


def measure_floors(args: argparse.Namespace, postgres_url: str | None, scratch: str, *,
                   round_number: int) -> list[tuple[str, dict[str, float]]]:
    """bench/floor_app.py on each backend, on fresh databases: the libraries and one durable
    write, nothing else. Its GeoIP files are built in the first round and read in every one."""
    geoip = Path(scratch) / "floor-geoip"
    if round_number == 0:
        geoip.mkdir()
        build_geoip(geoip)
    synchronous = args.sqlite_synchronous[0]
    databases = [(f"sqlite (synchronous={synchronous})", str(Path(scratch) / f"floor-{round_number}.db"))]
    if postgres_url:
        databases.append(("postgres", fresh_postgres(postgres_url).set(drivername="postgresql")
                          .render_as_string(hide_password=False)))
    floors = []
    for backend, database in databases:
        env = {"FLOOR_DATABASE": database, "FLOOR_GEOIP": str(geoip), "FLOOR_SQLITE_SYNCHRONOUS": synchronous}
        floors.append((f"floor on {backend}", measure_bench_app("floor_app", args, env)))
        print(f"  done: the floor on {backend}", file=sys.stderr)
    return floors


# -- databases ---------------------------------------------------------------------------

def fresh_postgres(url: str) -> sa.engine.URL:
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("DROP DATABASE IF EXISTS verify_bench WITH (FORCE)"))
        connection.execute(sa.text("CREATE DATABASE verify_bench"))
    admin.dispose()
    return base.set(database="verify_bench")


def through_proxy(url: sa.engine.URL, proxy: PostgresProxy) -> str:
    proxied = url.set(host="127.0.0.1", port=proxy.port).update_query_dict({"sslmode": "disable"})
    return proxied.render_as_string(hide_password=False)


# -- runs --------------------------------------------------------------------------------

@dataclass
class Run:
    server: str
    backend: str
    load: Load
    settings: dict[str, str]
    results: list[dict[str, float]] = field(default_factory=list)  # one wrk result per round
    sample: Sample = field(default_factory=Sample)  # the stage samples of every round
    round_trips: float | None = None


def medians(results: list[dict[str, float]], names: tuple[str, ...]) -> dict[str, float]:
    """Each named figure's median over a row's rounds."""
    return {name: statistics.median(result[name] for result in results) for name in names}


def summarise(results: list[dict[str, float]], baselines: list[dict[str, float]]) -> dict[str, float]:
    """A row's rounds in one: the medians of req/s, p50 and p99, every non-2xx answer, and the
    median and range of its ratios to the baseline of the same round."""
    ratios = [result["rps"] / baseline["rps"] for result, baseline in zip(results, baselines, strict=True)]
    return {
        **medians(results, ("rps", "p50", "p99")),
        "non_2xx": sum(result["non_2xx"] for result in results),
        "ratio": statistics.median(ratios),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
    }


def planned_runs(args: argparse.Namespace, *, with_postgres: bool) -> list[Run]:
    runs = []
    for name in args.loads:
        values = args.sqlite_synchronous if name == "honest" else args.sqlite_synchronous[:1]
        for value in values:
            runs.append(Run(f"verify on sqlite (synchronous={value})", "sqlite", LOADS[name],
                            {"VERIFY_SQLITE_SYNCHRONOUS": value}))
    if with_postgres:
        runs += [Run("verify on postgres", "postgres", LOADS[name], {}) for name in args.loads]
    return runs


def measure(run: Run, database_url: str, args: argparse.Namespace) -> None:
    """wrk (a short warm-up, then the measured run), then the stage sample, on one server."""
    with verify_server(database_url, settings=run.settings, workers=args.workers) as (port, key, group):
        run_wrk(port, key=key, script=run.load.script, duration=2, args=args)  # warm caches
        run.results.append(run_wrk(port, key=key, script=run.load.script, duration=args.duration, args=args,
                                   server_group=group))
        sample = send_signups(port, key, run.load.signups(SAMPLE_SIZE, thread_id=STAGE_SAMPLE_THREAD))
    run.sample.stages += sample.stages
    run.sample.wall_ms += sample.wall_ms
    run.sample.failures += sample.failures


def count_round_trips(run: Run, url: sa.engine.URL, args: argparse.Namespace) -> None:
    """Round trips per assessment, through the counting proxy, on the database `run` left."""
    proxy = PostgresProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        proxied = through_proxy(url, proxy)
        # The server's own background processes (webhook deliveries, revision jobs) poll the
        # database on timers: their round trips belong to no assessment, so they are not counted.
        background_off = {"VERIFY_SERVE_DELIVERIES": "off", "VERIFY_SERVE_REVISIONS": "off"}
        with verify_server(proxied, settings={**run.settings, **background_off}, workers=args.workers,
                           key_name="bench-round-trips") as (port, key, _):
            signups = run.load.signups(ROUND_TRIP_WARM_UP + SAMPLE_SIZE, thread_id=ROUND_TRIP_THREAD)
            send_signups(port, key, signups[:ROUND_TRIP_WARM_UP])
            proxy.reset()
            counted = send_signups(port, key, signups[ROUND_TRIP_WARM_UP:])
            run.round_trips = proxy.round_trips / SAMPLE_SIZE
            run.sample.failures += counted.failures
    finally:
        proxy.stop()


def run_all(runs: list[Run], args: argparse.Namespace, postgres_url: str | None, scratch: str, *, round_number: int) -> None:
    """One round of every row, each on a fresh database; round trips are counted in the first."""
    for index, run in enumerate(runs):
        if run.backend == "sqlite":
            measure(run, f"sqlite:///{scratch}/bench-{round_number}-{index}.db", args)
        else:
            url = fresh_postgres(postgres_url)
            measure(run, url.render_as_string(hide_password=False), args)
            if round_number == 0:
                count_round_trips(run, url, args)
        print(f"  done: {run.server}, {run.load.name}", file=sys.stderr)


# -- report ------------------------------------------------------------------------------

def table_rows(baselines: list[dict[str, float]], floors: list[tuple[str, list[dict[str, float]]]],
               runs: list[Run]) -> list[tuple[str, str, str, list[dict[str, float]], float | None]]:
    """(number, server, load, results of every round, round trips) for the baseline, the floors
    and each run, in the order the tables print them."""
    rows = [("", "bare Flask (baseline)", "honest", baselines, None)]
    rows += [("", server, "honest", results, None) for server, results in floors]
    rows += [(str(number), run.server, run.load.name, run.results, run.round_trips) for number, run in enumerate(runs, 1)]
    return rows


def print_throughput(baselines: list[dict[str, float]], floors: list[tuple[str, list[dict[str, float]]]],
                     runs: list[Run]) -> None:
    """One line per server and load; with several rounds, medians, and the range of the ratios."""
    rounds = len(baselines)
    if rounds > 1:
        print(f"Medians of {rounds} rounds; a ratio is the median of the row's ratios to each round's baseline")
    spread = f"{'ratio range':>13}" if rounds > 1 else ""
    print(f"{'#':<3}{'server':<52}{'load':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>7}"
          f"{spread}{'round trips':>13}")
    for number, server, load, results, round_trips in table_rows(baselines, floors, runs):
        row = summarise(results, baselines)
        trips = f"{round_trips:.2f}" if round_trips is not None else ""
        ranged = f"{row['ratio_low']:>7.2f} to {row['ratio_high']:.2f}" if rounds > 1 else ""
        print(f"{number:<3}{server:<52}{load:<10}{row['rps']:>8.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}"
              f"{row['non_2xx']:>9}{row['ratio']:>7.2f}{ranged}{trips:>13}")


CPU_FIELDS = ("cpu_server", "cpu_database", "cpu_load")


def summarise_cpu(results: list[dict[str, float]]) -> dict[str, float]:
    """The medians over the rounds of a row's CPU figures (bench/cpu_use.py), and their sum."""
    row = medians(results, (*CPU_FIELDS, "busy"))
    row["cpu_all"] = sum(row[name] for name in CPU_FIELDS)
    return row


def print_cpu(baselines: list[dict[str, float]], floors: list[tuple[str, list[dict[str, float]]]],
              runs: list[Run]) -> None:
    """Per row, the CPU each request cost during the measured run, and how busy the cores were."""
    print("\nCPU per request in ms during the measured runs (medians of rounds): the server's processes, the "
          "PostgreSQL server's, wrk's; and the share of the cores that was busy")
    print(f"{'#':<3}{'server':<52}{'load':<10}{'server':>8}{'database':>10}{'wrk':>7}{'all':>7}{'busy':>7}")
    for number, server, load, results, _ in table_rows(baselines, floors, runs):
        row = summarise_cpu(results)
        print(f"{number:<3}{server:<52}{load:<10}{row['cpu_server']:>8.3f}{row['cpu_database']:>10.3f}"
              f"{row['cpu_load']:>7.3f}{row['cpu_all']:>7.3f}{row['busy']:>7.0%}")


def print_stages(runs: list[Run]) -> None:
    """One row per stage, one column per run of the table above (by its #)."""
    summaries = [summarise_stages(run.sample.stages) for run in runs]
    names = [name for name in STAGES if any(name in summary for summary in summaries)]
    names += [name for summary in summaries for name in summary if name not in names]
    print(f"\nStages: median ms (share of all stage time) over {SAMPLE_SIZE} requests sent one at a time after each run, in every round")
    print(f"{'stage':<14}" + "".join(f"{'#' + str(number):>15}" for number in range(1, len(runs) + 1)))
    for name in names:
        cells = [f"{summary[name][0]:.3f} {summary[name][1]:>4.0%}" if name in summary else "-" for summary in summaries]
        print(f"{name:<14}" + "".join(f"{cell:>15}" for cell in cells))
    all_stages = [statistics.median(sum(timing.values()) for timing in run.sample.stages) if run.sample.stages else None
                  for run in runs]
    print(f"{'all stages':<14}" + "".join(f"{value:>15.3f}" if value is not None else f"{'-':>15}" for value in all_stages))
    print(f"{'client p50':<14}" + "".join(f"{statistics.median(run.sample.wall_ms):>15.3f}" for run in runs))
    if not all(run.sample.stages for run in runs):
        print("(-: no Server-Timing header came back; the server does not know VERIFY_SERVER_TIMING yet)")


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("a whole number, 1 or more")
    return value


def comma_list(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        values = [value.strip() for value in text.split(",") if value.strip()]
        unknown = [value for value in values if value not in allowed]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (comma-separated)")
        return values
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (default: one per CPU)")
    parser.add_argument("--repeat", type=at_least_one, default=1,
                        help="rounds of every measurement; the table gives their medians (default 1)")
    parser.add_argument("--loads", type=comma_list(tuple(LOADS)), default=list(LOADS),
                        help="loads to run on each backend (default honest,campaign)")
    parser.add_argument("--sqlite-synchronous", type=comma_list(SYNCHRONOUS_VALUES), default=list(SYNCHRONOUS_VALUES),
                        help="VERIFY_SQLITE_SYNCHRONOUS values for SQLite's honest load (default full,normal)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    postgres_url = os.environ.get("VERIFY_BENCH_POSTGRES_URL")
    runs = planned_runs(args, with_postgres=bool(postgres_url))
    print(f"{args.workers} workers, {args.connections} connections, {args.duration}s per run, {args.repeat} round(s), "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    dns = LoopbackDNS().start()
    os.environ["VERIFY_DNS_NAMESERVERS"] = dns.nameserver  # for every server and command started from here
    baselines: list[dict[str, float]] = []
    floors: dict[str, list[dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for round_number in range(args.repeat):
                baselines.append(measure_bench_app("baseline_app", args))
                for server, result in measure_floors(args, postgres_url, scratch, round_number=round_number):
                    floors.setdefault(server, []).append(result)
                run_all(runs, args, postgres_url, scratch, round_number=round_number)
    finally:
        dns.stop()

    print_throughput(baselines, list(floors.items()), runs)
    print_cpu(baselines, list(floors.items()), runs)
    print_stages(runs)
    if any(result["non_2xx"] for run in runs for result in run.results) or any(run.sample.failures for run in runs):
        sys.exit("some requests failed (non-2xx): these figures do not measure assessments")


if __name__ == "__main__":
    main()
