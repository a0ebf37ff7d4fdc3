"""SQLite group commit (verify/store/group_commit.py): a real writer process on a real
database file, real client processes over its Unix socket."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import bearer
from verify.app import create_app
from verify.errors import Unavailable
from verify.store import driver as driver_module
from verify.store.assessments import INSERT_ASSESSMENT
from verify.store.driver import UniqueViolation, WriterUnreachable, sqlite_moment
from verify.store import group_commit
from verify.store.group_commit import LOCK_POLL_SECONDS, UNREACHABLE, Client, connect_database, run_group
from verify.store.keys import create_api_key
from verify.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def row(assessment_id: str) -> dict:
    """An assessment's columns as the hot path binds them for SQLite."""
    at = sqlite_moment(datetime.now(timezone.utc))
    return {
        "id": assessment_id, "created_at": at, "occurred_at": at, "verdict": "allow", "score": 0, "policy_version": 1,
        "api_key_id": None, "idempotency_key": None, "request_hash": None, "email": f"{assessment_id}@example-mail.com",
        "email_canonical": f"{assessment_id}@example-mail.com", "email_domain": "example-mail.com", "local_template": None,
        "phone": None, "phone_e164": None, "phone_block": None, "ip": None, "ip_network": None, "asn": None,
        "country": None, "device_id": None, "payment_fingerprint": None, "user_agent": None, "external_id": None,
        "metadata": None, "reasons": "[]", "signals": "{}",
    }


def stored_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {assessment_id for (assessment_id,) in connection.execute("SELECT id FROM assessments")}


@pytest.fixture
def database(tmp_path, sqlite_template) -> Path:
    path = tmp_path / "verify.db"
    shutil.copy(sqlite_template, path)
    return path


@pytest.fixture
def socket_path(tmp_path) -> str:
    return str(tmp_path / "writer.sock")


def start_writer(database: Path, socket_path: str) -> subprocess.Popen:
    writer = subprocess.Popen([sys.executable, "-m", "verify.store.group_commit", str(database), socket_path, "full"], cwd=ROOT)
    deadline = time.monotonic() + 10
    while not os.path.exists(socket_path):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.02)
    return writer


@contextmanager
def running_writer(database: Path, socket_path: str):
    writer = start_writer(database, socket_path)
    try:
        yield writer
    finally:
        if writer.poll() is None:
            writer.terminate()
        writer.wait(timeout=10)


def write_rows(socket_path: str, prefix: str, count: int) -> list[str]:
    """In a client process: write `count` assessments one request each; the acknowledged ids."""
    client = Client(socket_path, timeout=5)
    acknowledged = []
    for n in range(count):
        assessment_id = f"{prefix}-{n}"
        try:
            client.write([(INSERT_ASSESSMENT, [row(assessment_id)])])
        except (sqlite3.OperationalError, WriterUnreachable):
            time.sleep(0.02)  # the writer is down; the next request reconnects
            continue
        acknowledged.append(assessment_id)
    return acknowledged


def test_writes_from_several_processes_all_land(database, socket_path):
    with running_writer(database, socket_path):
        context = multiprocessing.get_context("spawn")
        with context.Pool(4) as pool:
            acknowledged = pool.starmap(write_rows, [(socket_path, f"p{p}", 60) for p in range(4)])
    assert [len(ids) for ids in acknowledged] == [60] * 4
    assert stored_ids(database) >= {i for ids in acknowledged for i in ids}


def test_a_write_larger_than_one_read_arrives_whole(database, socket_path):
    large = {**row("large"), "metadata": json.dumps({"note": "x" * (3 * group_commit.READ_SIZE)})}
    with running_writer(database, socket_path):
        client = Client(socket_path, timeout=5)
        client.write([(INSERT_ASSESSMENT, [large])])
        client.write([(INSERT_ASSESSMENT, [row("after")])])
        client.close()
    with sqlite3.connect(database) as connection:
        (metadata,) = connection.execute("SELECT metadata FROM assessments WHERE id = 'large'").fetchone()
    assert metadata == large["metadata"] and stored_ids(database) == {"large", "after"}


def test_a_unique_violation_undoes_only_its_own_request_in_the_group(database):
    connection = connect_database(str(database), "full")
    try:
        # One group: the second request's first statement succeeds, its second collides with
        # the first request; that request is undone whole, the others are committed.
        answers = run_group(connection, [
            [(INSERT_ASSESSMENT, [row("a")])],
            [(INSERT_ASSESSMENT, [row("b"), row("a")])],
            [(INSERT_ASSESSMENT, [row("c")])],
            [("INSERT INTO no_such_table VALUES (1)", [{}])],
        ])
    finally:
        connection.close()
    assert answers[0] == ("ok",) and answers[2] == ("ok",)
    assert answers[1][0] == "unique"
    assert answers[3][:2] == ("error", "OperationalError")
    assert stored_ids(database) == {"a", "c"}


@contextmanager
def write_lock_held(database: Path, *, seconds: float | None):
    """Another connection (as the revision drain or a CLI command would) holds SQLite's write lock
    for `seconds` (None: until the block ends); yields once it is held."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(seconds)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_the_writer_polls_for_a_lock_another_process_holds_instead_of_backing_off(database, monkeypatch):
    # SQLite's own busy handler sleeps ever longer (up to 100 ms a try): every worker's request
    # waited behind the writer that long after the lock was free.
    slept = []
    real_sleep = time.sleep
    monkeypatch.setattr(group_commit.time, "sleep", lambda seconds: (slept.append(seconds), real_sleep(seconds)))
    connection = connect_database(str(database), "full")
    try:
        with write_lock_held(database, seconds=0.2):
            answers = run_group(connection, [[(INSERT_ASSESSMENT, [row("a")])]])
    finally:
        connection.close()
    assert answers == [("ok",)]
    assert stored_ids(database) == {"a"}
    assert len(slept) > 10 and set(slept) == {LOCK_POLL_SECONDS}


def test_the_writer_gives_up_on_a_lock_held_past_the_busy_timeout(database, monkeypatch):
    monkeypatch.setattr(group_commit, "SQLITE_BUSY_TIMEOUT_MS", 100)
    connection = connect_database(str(database), "full")
    try:
        with write_lock_held(database, seconds=None):
            answers = run_group(connection, [[(INSERT_ASSESSMENT, [row("a")])], [(INSERT_ASSESSMENT, [row("b")])]])
    finally:
        connection.close()
    assert [answer[:2] for answer in answers] == [("error", "OperationalError")] * 2
    assert stored_ids(database) == set()


def test_the_sender_of_a_colliding_write_gets_unique_violation(database, socket_path):
    with running_writer(database, socket_path):
        client = Client(socket_path, timeout=30)  # what is tested is the answer, not its speed
        client.write([(INSERT_ASSESSMENT, [row("once")])])
        with pytest.raises(UniqueViolation):
            client.write([(INSERT_ASSESSMENT, [row("twice"), row("once")])])
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            client.write([("INSERT INTO no_such_table VALUES (1)", [{}])])
        client.write([(INSERT_ASSESSMENT, [row("after")])])  # the connection is still good
    assert stored_ids(database) == {"once", "after"}


def test_what_a_writer_killed_with_sigkill_acknowledged_is_stored(database, socket_path):
    writer = start_writer(database, socket_path)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = [pool.apply_async(write_rows, (socket_path, f"k{p}", 1000)) for p in range(3)]
        deadline = time.monotonic() + 30
        while len(stored_ids(database)) < 150:  # writes under way (spawned clients take a while to start)
            assert time.monotonic() < deadline, "the clients did not start writing"
            time.sleep(0.05)
        assert not all(result.ready() for result in results), "the load ended before the kill; write more rows"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        os.unlink(socket_path)
        with running_writer(database, socket_path):  # restarted: the clients reconnect and go on
            acknowledged = [i for result in results for i in result.get(timeout=120)]
    stored = stored_ids(database)
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged writes lost"
    assert len(acknowledged) < 3 * 1000, "no write failed while the writer was down: the kill missed the load"
    assert any(i.endswith("-999") for i in acknowledged), "the clients did not resume after the restart"


def test_no_writer_is_an_error_at_once_that_says_nothing_was_sent(socket_path):
    client = Client(socket_path, timeout=30)
    started = time.monotonic()
    with pytest.raises(WriterUnreachable, match=UNREACHABLE):  # the caller may commit the batch itself
        client.write([(INSERT_ASSESSMENT, [row("x")])])
    assert time.monotonic() - started < 5  # not the 30 s timeout: no socket fails at once
    assert issubclass(WriterUnreachable, Unavailable)  # a 503 wherever it is not caught


def test_a_hung_writer_times_out_and_a_dead_one_fails_at_once(database, socket_path):
    # Only the write meant to time out has a short timeout: the others are patient, so that a
    # loaded machine cannot fail them, and "at once" is measured against their own timeout.
    with running_writer(database, socket_path) as writer:
        patient = Client(socket_path, timeout=10)
        hasty = Client(socket_path, timeout=1)
        patient.write([(INSERT_ASSESSMENT, [row("before")])])
        writer.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match=UNREACHABLE):
                hasty.write([(INSERT_ASSESSMENT, [row("stuck")])])
            assert 0.9 < time.monotonic() - started < 5
        finally:
            writer.send_signal(signal.SIGCONT)
        patient.write([(INSERT_ASSESSMENT, [row("resumed")])])
        writer.kill()
        writer.wait()
        started = time.monotonic()
        with pytest.raises(WriterUnreachable, match=UNREACHABLE):  # nothing sent: its socket is closed
            patient.write([(INSERT_ASSESSMENT, [row("gone")])])
        assert time.monotonic() - started < 5  # not the 10 s timeout: a closed socket fails at once


@pytest.fixture
def writer_client():
    """The hook a `verify serve` worker sets (verify/server.py), restored afterwards."""
    def attach(path: str) -> None:
        driver_module.writer = Client(path, timeout=30)

    yield attach
    driver_module.writer = None


def test_the_api_stores_through_the_writer_and_commits_itself_when_none_listens(database, socket_path, writer_client,
                                                                                dns_server):
    settings = Settings(database_url=f"sqlite:///{database}", mx_check=False)
    app = create_app(settings)
    try:
        with app.extensions["verify"].database.transaction() as session:
            secret = create_api_key("writer", ["assess"], session=session)
        client = app.test_client()
        writer_client(socket_path)
        with running_writer(database, socket_path):
            key = uuid.uuid4().hex
            first = client.post("/v1/assessments", json={"email": "through@example-mail.com"}, headers={**bearer(secret), "Idempotency-Key": key})
            assert first.status_code == 201
            assert first.get_json()["id"] in stored_ids(database)
            again = client.post("/v1/assessments", json={"email": "through@example-mail.com"}, headers={**bearer(secret), "Idempotency-Key": key})
            assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
        # No writer listens (its supervisor is gone): nothing was sent, so the worker commits it.
        alone = client.post("/v1/assessments", json={"email": "nowriter@example-mail.com"}, headers=bearer(secret))
        assert alone.status_code == 201
        assert alone.get_json()["id"] in stored_ids(database) and len(stored_ids(database)) == 2
    finally:
        app.extensions["verify"].database.dispose()
