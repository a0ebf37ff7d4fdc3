"""`verify serve` as production runs it: nothing left on the host that a second instance would
share (no gunicorn control socket), /metrics summing the workers from the start, on SQLite the
assessments committed by one writer process, and the revision jobs drained by a child of its own."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

from tests.store.test_resilience import (
    ROOT,
    children,
    free_port,
    get,
    make_key,
    stored,
    supervised,
    verify_serve,
    workers_of,
    writer_of,
)
from verify import revising


def test_verify_serve_opens_no_control_socket_and_exposes_its_workers_metrics(tmp_path, sqlite_template, geoip_files):
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    port = free_port()
    env = {
        **os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
        "VERIFY_DATABASE_URL": f"sqlite:///{database}", "VERIFY_MX_CHECK": "off",
        "VERIFY_GEOIP_CITY_DB": str(geoip_files["city"]),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "verify", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "verify serve exited during start-up"
            assert time.monotonic() < deadline, "verify serve did not answer"
            time.sleep(0.2)
        made = [path.relative_to(tmp_path) for path in (*home.rglob("*"), *runtime.rglob("*"))]
        assert made == [], f"verify serve left {made} where every instance of the user would find it"
        # The master opened the GeoIP file before it forked; the workers' own metrics must still show.
        text = get(port, "/metrics")[1].decode()
        assert re.search(r'^verify_geoip_build_timestamp_seconds\{role="city"\} [1-9]', text, re.MULTILINE), text[:2000]
        assert re.search(r'^verify_assessments_total\{verdict="deny"\} 0\.0$', text, re.MULTILINE)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def test_verify_serve_on_sqlite_commits_through_one_writer_unless_told_not_to(tmp_path, sqlite_template):
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    secret, key_id = make_key(url, "writer", ["assess"])
    with verify_serve(url, workers=1) as (server, port):
        writer = writer_of(server.pid)
        # A stopped writer holds the worker's assessment: it is committed (and answered) there.
        os.kill(writer, signal.SIGSTOP)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            connection.request("POST", "/v1/assessments", body=json.dumps({"email": "held@example-mail.com"}), headers=headers)
            time.sleep(1.0)
            assert not select.select([connection.sock], [], [], 0)[0], "the worker answered without the writer"
            assert stored(url, key_id) == []
            os.kill(writer, signal.SIGCONT)
            response = connection.getresponse()
            assert response.status == 201
            assert [assessment_id for _, assessment_id in stored(url, key_id)] == [json.loads(response.read())["id"]]
        finally:
            os.kill(writer, signal.SIGCONT)
            connection.close()
    assert not still_running(writer), "the writer outlived the server"
    with verify_serve(url, workers=1, extra_env={"VERIFY_SQLITE_GROUP_COMMIT": "off"}) as (server, port):
        assert writer_of(server.pid) is None and len(children(server.pid)) == 1



def test_a_writer_whose_supervisor_is_gone_too_is_started_again_and_nothing_is_lost(tmp_path, sqlite_template):
    """Both killed: until the arbiter starts another supervisor (within about a second) no
    writer listens and the worker commits its assessments itself (nothing can have reached a
    writer); then group commit is back, at the same socket path."""
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    secret, key_id = make_key(url, "orphan", ["assess"])
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with verify_serve(url, workers=1) as (server, port):
        writer = writer_of(server.pid)
        supervisor = next(child for child in children(server.pid) if writer in children(child))
        os.kill(supervisor, signal.SIGKILL)
        os.kill(writer, signal.SIGKILL)
        assert not still_running(writer) and not still_running(supervisor)
        made = [send(port, "POST", "/v1/assessments", {"email": f"alone.{n}@example-mail.com"}, headers)["id"] for n in range(3)]
        deadline = time.monotonic() + 10
        while writer_of(server.pid) in (None, writer):
            assert time.monotonic() < deadline, "no supervisor and writer were started again"
            time.sleep(0.1)
        again = writer_of(server.pid)
        os.kill(again, signal.SIGSTOP)  # the next assessment waits for this writer: it goes through it
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("POST", "/v1/assessments", body=json.dumps({"email": "back@example-mail.com"}), headers=headers)
            time.sleep(1.0)
            assert not select.select([connection.sock], [], [], 0)[0], "the worker answered without the new writer"
            os.kill(again, signal.SIGCONT)
            response = connection.getresponse()
            assert response.status == 201
            made.append(json.loads(response.read())["id"])
        finally:
            os.kill(again, signal.SIGCONT)
            connection.close()
        assert sorted(assessment_id for _, assessment_id in stored(url, key_id)) == sorted(made)
        assert 'verify_background_restarts_total{process="sqlite_writer"} 1.0' in get(port, "/metrics")[1].decode()


def still_running(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True


def test_verify_serve_drains_the_revision_jobs_in_a_child_of_its_own(tmp_path, sqlite_template):
    """No `verify worker` beside it: a fraud label revises the signups it links within a few
    seconds, done by one process beside the workers (not by threads in them, which took their
    GIL and, on SQLite, held the write lock for a whole batch), started again if it dies."""
    database = tmp_path / "verify.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    secret, _ = make_key(url, "drain", ["assess", "admin"])
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with verify_serve(url, workers=1, extra_env={"VERIFY_SERVE_REVISIONS": "on"}) as (server, port):
        [drain] = supervised(server.pid, "revision jobs")
        # The drain yields the CPU to the worker.
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in (*workers_of(server.pid), drain)] == [0, revising.DRAIN_NICENESS]
        first = fraud_ring(port, headers, "farm")
        assert revised_within(port, headers, len(first)) == sorted(first)

        os.kill(drain, signal.SIGKILL)  # as the kernel's OOM killer would
        assert not still_running(drain)
        deadline = time.monotonic() + 10
        while not supervised(server.pid, "revision jobs"):
            assert time.monotonic() < deadline, "the drain was not started again"
            time.sleep(0.1)
        second = fraud_ring(port, headers, "ring")
        assert revised_within(port, headers, len(first) + len(second)) == sorted(first + second)
        exposition = get(port, "/metrics")[1].decode()
        assert 'verify_background_restarts_total{process="revision_jobs"} 1.0' in exposition
        assert 'verify_background_restarts_total{process="sqlite_writer"} 0.0' in exposition
    with verify_serve(url, workers=1) as (server, _port):  # VERIFY_SERVE_REVISIONS=off
        assert len(children(server.pid)) == 2  # the worker and the writer's supervisor


def fraud_ring(port: int, headers: dict, name: str) -> list[str]:
    """Three signups on one device, the first labelled fraud: a job that revises all three."""
    ids = [send(port, "POST", "/v1/assessments", {"email": f"{name}.{n}@gmail.com", "device_id": f"{name}-dev"}, headers)["id"]
           for n in range(3)]
    send(port, "POST", f"/v1/assessments/{ids[0]}/feedback", {"label": "fraud"}, headers)
    return ids


def revised_within(port: int, headers: dict, count: int, seconds: float = 20) -> list[str]:
    """The assessments in the revision feed, once it holds `count` of them (or the time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        revised = [item["assessment_id"] for item in send(port, "GET", "/v1/revisions?limit=50", None, headers)["items"]]
        if len(revised) >= count or time.monotonic() > deadline:
            return sorted(revised)
        time.sleep(0.2)


def send(port: int, method: str, path: str, body: dict | None, headers: dict) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        assert 200 <= response.status < 300, (response.status, response.read())
        return json.loads(response.read())
    finally:
        connection.close()
