"""The HTTP benchmark's own parts: Server-Timing headers, wrk's output, the runs it plans, the stage sample."""

from __future__ import annotations

import argparse
import threading

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from bench.http_bench import (
    at_least_one, build_parser, comma_list, parse_server_timing, parse_wrk, planned_runs, send_signups, stage_durations, summarise,
    summarise_cpu, summarise_stages,
)

SERVER_TIMING_CASES = [
    pytest.param("auth;dur=0.081, validation;dur=0.050, history;dur=0.300",
                 [("auth", 0.081), ("validation", 0.050), ("history", 0.300)], id="the service's form"),
    pytest.param('name;dur=1.2;desc="x, y; z=1", other;dur=3', [("name", 1.2), ("other", 3.0)],
                 id="a quoted description holding a comma, a semicolon and an equals sign"),
    pytest.param('cache;desc="Cache Read";dur=23.2', [("cache", 23.2)], id="dur after desc"),
    pytest.param("total ; DUR = 1.5", [("total", 1.5)], id="white space around ; and =, and DUR in capitals"),
    pytest.param('db;dur="2.5"', [("db", 2.5)], id="a quoted duration"),
    pytest.param("miss, db;dur=53", [("miss", 0.0), ("db", 53.0)], id="a metric without dur is 0"),
    pytest.param("db;dur=fast", [("db", 0.0)], id="a dur that is not a number is 0"),
    pytest.param("db;dur=1;dur=2", [("db", 1.0)], id="the first dur counts"),
    pytest.param(" , ,db;dur=1,, ", [("db", 1.0)], id="empty entries are skipped"),
    pytest.param('"quoted";dur=1, db;dur=2', [("db", 2.0)], id="an entry without a name is skipped"),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("header", "expected"), SERVER_TIMING_CASES)
def test_server_timing_headers_are_read_as_the_w3c_syntax_allows(header, expected):
    assert parse_server_timing(header) == expected


def test_a_stage_named_twice_is_summed():
    assert stage_durations("record;dur=0.1, commit;dur=0.2, record;dur=0.3") == {"record": pytest.approx(0.4), "commit": 0.2}


def test_stages_are_summarised_by_median_and_share_in_the_services_order():
    summary = summarise_stages([
        {"history": 3.0, "auth": 1.0, "extra": 0.0},
        {"history": 5.0, "auth": 1.0},
        {"history": 4.0, "auth": 2.0},
    ])
    assert list(summary) == ["auth", "history", "extra"]
    assert summary["auth"] == (1.0, pytest.approx(4 / 16))
    assert summary["history"] == (4.0, pytest.approx(12 / 16))
    assert summary["extra"] == (0.0, 0.0)


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:40000
  2 threads and 16 connections
  Latency Distribution
     50%    3.31ms
     75%    4.02ms
     90%    5.00ms
     99%    1.20s
  23100 requests in 5.00s, 4.10MB read
  Non-2xx or 3xx responses: 7
Requests/sec:   4620.51
Transfer/sec:    840.00KB
"""


def test_wrk_output_is_read_in_milliseconds():
    assert parse_wrk(WRK_OUTPUT) == {"rps": 4620.51, "p50": 3.31, "p99": 1200.0, "non_2xx": 7, "requests": 23100}


def test_the_default_plan_runs_both_loads_and_sqlite_honest_once_per_durability():
    args = argparse.Namespace(loads=["honest", "campaign"], sqlite_synchronous=["full", "normal"])
    runs = [(run.server, run.load.name, run.settings) for run in planned_runs(args, with_postgres=True)]
    assert runs == [
        ("verify on sqlite (synchronous=full)", "honest", {"VERIFY_SQLITE_SYNCHRONOUS": "full"}),
        ("verify on sqlite (synchronous=normal)", "honest", {"VERIFY_SQLITE_SYNCHRONOUS": "normal"}),
        ("verify on sqlite (synchronous=full)", "campaign", {"VERIFY_SQLITE_SYNCHRONOUS": "full"}),
        ("verify on postgres", "honest", {}),
        ("verify on postgres", "campaign", {}),
    ]


def test_comma_lists_refuse_what_they_do_not_know():
    parse = comma_list(("honest", "campaign"))
    assert parse("campaign, honest") == ["campaign", "honest"]
    for text in ("honest,farm", "", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_the_default_options_are_both_loads_and_both_durabilities_in_one_round():
    args = build_parser().parse_args([])
    assert (args.loads, args.sqlite_synchronous, args.repeat) == (["honest", "campaign"], ["full", "normal"], 1)
    args = build_parser().parse_args(["--loads", "campaign", "--sqlite-synchronous", "normal"])
    assert (args.loads, args.sqlite_synchronous) == (["campaign"], ["normal"])


@pytest.fixture
def timing_server():
    """A real HTTP server answering assessments with a Server-Timing header, and what it received."""
    received: list[tuple[str, dict]] = []
    app = Flask(__name__)

    @app.post("/v1/assessments")
    def assess():
        received.append((request.headers["Authorization"], request.get_json()))
        if len(received) == 2:
            return {"title": "refused"}, 422
        return {"verdict": "allow"}, 201, {"Server-Timing": f"auth;dur=0.1, history;dur={len(received)}"}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, received
    server.shutdown()
    thread.join()


def test_the_stage_sample_posts_each_signup_and_keeps_each_answers_timings(timing_server):
    port, received = timing_server
    signups = [{"email": f"user{n}@example-mail.com"} for n in range(4)]
    sample = send_signups(port, "secret", signups)
    assert received == [("Bearer secret", signup) for signup in signups]
    assert sample.stages == [{"auth": 0.1, "history": 1.0}, {"auth": 0.1, "history": 3.0}, {"auth": 0.1, "history": 4.0}]
    assert (sample.failures, len(sample.wall_ms)) == (1, 4)


@pytest.mark.parametrize("text", ["0", "-2", "three", ""])
def test_a_repeat_is_one_round_or_more(text):
    with pytest.raises(argparse.ArgumentTypeError):
        at_least_one(text)
    assert build_parser().parse_args(["--repeat", "3"]).repeat == 3


def test_a_rows_ratio_is_the_median_of_its_ratios_to_each_rounds_baseline():
    # The machine slows down in the second round: the raw req/s fall, the paired ratios do not.
    baselines = [{"rps": 5000.0}, {"rps": 4000.0}, {"rps": 4800.0}]
    results = [{"rps": 700.0, "p50": 20.0, "p99": 30.0, "non_2xx": 0},
               {"rps": 600.0, "p50": 24.0, "p99": 41.0, "non_2xx": 2},
               {"rps": 624.0, "p50": 22.0, "p99": 33.0, "non_2xx": 1}]
    row = summarise(results, baselines)
    assert row == {"rps": 624.0, "p50": 22.0, "p99": 33.0, "non_2xx": 3,
                   "ratio": pytest.approx(0.14), "ratio_low": pytest.approx(0.13), "ratio_high": pytest.approx(0.15)}


def test_a_row_needs_one_result_per_round():
    with pytest.raises(ValueError):
        summarise([{"rps": 1.0, "p50": 1.0, "p99": 1.0, "non_2xx": 0}], [{"rps": 2.0}, {"rps": 2.0}])


def test_a_rows_cpu_figures_are_their_medians_over_the_rounds_and_their_sum():
    rounds = [
        {"cpu_server": 2.0, "cpu_database": 0.0, "cpu_load": 0.1, "busy": 0.78},
        {"cpu_server": 2.4, "cpu_database": 0.0, "cpu_load": 0.3, "busy": 0.80},
        {"cpu_server": 1.9, "cpu_database": 0.0, "cpu_load": 0.2, "busy": 0.70},
    ]
    row = summarise_cpu(rounds)
    assert (row["cpu_server"], row["cpu_load"], row["busy"]) == (2.0, 0.2, 0.78)
    assert row["cpu_all"] == pytest.approx(2.2)
