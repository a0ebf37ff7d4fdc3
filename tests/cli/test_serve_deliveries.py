"""`verify serve` on the embedded default delivers webhooks with no other process to start;
`verify worker --once` delivers too; VERIFY_SERVE_DELIVERIES=off leaves it to the worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.webhook_receiver import WebhookReceiver
from verify.server import background_processes, server_options
from verify.settings import Settings
from verify.store.webhooks import REVISION_CREATED, create_endpoint, enqueue_event

VERIFY = Path(sys.executable).parent / "verify"


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def queue_one(services, url: str) -> None:
    with services.database.transaction() as session:
        create_endpoint(url=url, events=[REVISION_CREATED], description="", enabled=True, actor="test", session=session)
    with services.database.transaction() as session:
        enqueue_event(session, REVISION_CREATED, {"id": "rev-1", "sequence": 1})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_delivers_with_no_other_process(services, database_url, receiver, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("the embedded default is SQLite")
    queue_one(services, receiver.url())
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url, "VERIFY_MX_CHECK": "off", "VERIFY_SERVE_DELIVERIES": "on"}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen([str(VERIFY), "serve", "--workers", "1", "--port", str(free_port())], env=env, stderr=sink, stdout=sink)
    try:
        deadline = time.monotonic() + 15
        while not receiver.received and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
        assert len(receiver.received) == 1, log.read_text()
    finally:
        server.send_signal(signal.SIGINT)  # gunicorn's quick shutdown; the delivery child is told on exit
        server.wait(timeout=15)
    child = int(re.search(r"webhook deliveries in process (\d+)", log.read_text()).group(1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the delivery child stops with the server
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the delivery process outlived the server")


def test_serve_leaves_deliveries_and_revisions_to_a_worker_when_told():
    # (without SQLite's group-commit writer, which runs beside the workers too)
    quiet = {"sqlite_group_commit": False, "serve_revisions": False}
    assert [process.what for process in background_processes(Settings(**quiet))] == ["webhook deliveries"]
    assert background_processes(Settings(**quiet, serve_deliveries=False)) == []
    revisions_only = background_processes(Settings(sqlite_group_commit=False, serve_deliveries=False))
    assert [process.what for process in revisions_only] == ["revision jobs"]
    assert "when_ready" in server_options(Settings(), host="127.0.0.1", port=8080, workers=1, background=revisions_only)
    assert "when_ready" not in server_options(Settings(), host="127.0.0.1", port=8080, workers=1, background=[])
    assert Settings.from_env({"VERIFY_SERVE_DELIVERIES": "off"}).serve_deliveries is False
    assert Settings.from_env({"VERIFY_SERVE_REVISIONS": "off"}).serve_revisions is False


def test_the_worker_delivers(app, services, receiver):
    from verify import cli

    queue_one(services, receiver.url())
    result = app.test_cli_runner().invoke(cli.main, ["worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"webhook delivery msg_[0-9a-f]{32}: succeeded\n", result.stdout)
    assert len(receiver.received) == 1
    assert app.test_cli_runner().invoke(cli.main, ["worker", "--once"]).output == ""  # nothing due any more
