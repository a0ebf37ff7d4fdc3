"""Under load and faults: several OS processes posting thousands of signups to a real
`verify serve` (gunicorn) while a worker, and on SQLite the group-commit writer, are killed
with SIGKILL; a database that goes away and comes back. Nothing acknowledged is lost,
nothing is stored twice, nothing hangs."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.support import load_client
from tests.conftest import BACKENDS, bearer
from verify.app import create_app
from verify.store.keys import create_api_key, live_api_keys, secret_lookup
from verify.store.database import Database

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS, PER_THREAD = 3, 4, 90  # 1,080 signups, and a retry of every tenth
WORKERS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:  # it has just exited
        return []
    return [int(child) for child in text.split()]


def title(pid: int) -> str:
    """A process's name as `ps` shows it (verify/children.py names the processes it forks)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except FileNotFoundError:
        return ""


def workers_of(server_pid: int) -> list[int]:
    """gunicorn's workers, among the arbiter's children (the others are supervisors of ours)."""
    return [child for child in children(server_pid) if title(child).startswith("gunicorn: worker")]


def supervised(server_pid: int, what: str) -> list[int]:
    """The processes named `what` under their supervisors, children of the arbiter."""
    return [pid for child in children(server_pid) for pid in children(child) if title(pid) == f"verify: {what}"]


def writer_of(server_pid: int) -> int | None:
    """The SQLite group-commit writer (a grandchild of the arbiter, under its supervisor)."""
    writers = supervised(server_pid, "SQLite writer")
    assert len(writers) <= 1
    return writers[0] if writers else None


@contextmanager
def verify_serve(database_url: str, *, workers: int, extra_env: dict[str, str] | None = None):
    """`verify serve` on a free loopback port, as production runs it; stopped afterwards."""
    port = free_port()
    # Without the webhook delivery and revision processes unless asked for; ready once each
    # process wanted runs, under its supervisor.
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url, "VERIFY_MX_CHECK": "off", "VERIFY_SERVE_DELIVERIES": "off",
           "VERIFY_SERVE_REVISIONS": "off", **(extra_env or {})}
    group_commit = database_url.startswith("sqlite") and env.get("VERIFY_SQLITE_GROUP_COMMIT", "on") == "on"
    wanted = {"webhook deliveries": env["VERIFY_SERVE_DELIVERIES"] == "on", "revision jobs": env["VERIFY_SERVE_REVISIONS"] == "on",
              "SQLite writer": group_commit}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "verify", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (get(port, "/readyz")[0] == 200 and len(workers_of(server.pid)) == workers
                        and all(len(supervised(server.pid, what)) == on for what, on in wanted.items())):
                    break
            except OSError:
                pass
            assert server.poll() is None, "verify serve exited during start-up"
            assert time.monotonic() < deadline, "verify serve did not become ready"
            time.sleep(0.2)
        yield server, port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def make_key(database_url: str, name: str, scopes: list[str]) -> tuple[str, int]:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            secret = create_api_key(name, scopes, session=session)
        with database.transaction() as session:
            return secret, live_api_keys(session=session)[secret_lookup(secret)].id
    finally:
        database.dispose()


def stored(database_url: str, api_key_id: int) -> list[tuple[str, str]]:
    engine = sa.create_engine(Database(database_url).url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT idempotency_key, id FROM assessments WHERE api_key_id = :k"), {"k": api_key_id}
            )
            return [(key, assessment_id) for key, assessment_id in rows]
    finally:
        engine.dispose()


def metric_total(port: int, name: str) -> float:
    status, body = get(port, "/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    )


def chunked_post(port: int, secret: str, size: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps({"email": "big@example-mail.com", "user_agent": "x" * size}).encode()
        chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        connection.request("POST", "/v1/assessments", body=chunks, headers=headers, encode_chunked=True)
        return connection.getresponse().status
    except (ConnectionResetError, BrokenPipeError):
        return 413  # gunicorn may close before reading the rest; the answer was already sent
    finally:
        connection.close()


def test_load_from_several_processes_with_a_worker_killed_loses_and_duplicates_nothing(database_url):
    secret, key_id = make_key(database_url, "load", ["assess"])
    with verify_serve(database_url, workers=WORKERS) as (server, port):
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
            futures = [pool.submit(load_client.run_process, port, secret, p, THREADS, PER_THREAD) for p in range(PROCESSES)]
            time.sleep(1.0)  # the load is under way (spawned clients start in about half a second)
            victim = workers_of(server.pid)[0]
            load_running = not all(future.done() for future in futures)
            os.kill(victim, signal.SIGKILL)
            # On SQLite the writer that commits every worker's assessments dies too, mid-load:
            # what it answered is committed; what it held is answered 503 and retried.
            writer = writer_of(server.pid)
            if writer is not None:
                time.sleep(0.5)
                load_running = load_running and not all(future.done() for future in futures)
                os.kill(writer, signal.SIGKILL)
            records = [record for future in futures for record in future.result()]
        assert load_running, "the load finished before the worker (and the writer) were killed; raise PER_THREAD"

        deadline = time.monotonic() + 20
        while victim in workers_of(server.pid) or len(workers_of(server.pid)) < WORKERS:
            assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
            time.sleep(0.1)
        if writer is not None:
            assert writer_of(server.pid) not in (None, writer), "the writer was not restarted"
        acknowledged_verdicts = metric_total(port, "verify_assessments_total")
        assert chunked_post(port, secret, 70_000) == 413
        assert chunked_post(port, secret, 1_000) == 201

    firsts = [r for r in records if r["kind"] == "first"]
    retries = [r for r in records if r["kind"] == "retry"]
    assert len(firsts) == PROCESSES * THREADS * PER_THREAD
    unanswered = [r for r in firsts if r["status"] is None]
    assert not unanswered, f"signups never answered after retries: {unanswered[:3]}"
    assert {r["status"] for r in firsts} <= {200, 201}
    created = [r for r in firsts if r["status"] == 201]

    rows = stored(database_url, key_id)
    by_key = dict(rows)
    # Every acknowledged verdict (201, or a 200 replay of a request whose first answer was lost
    # with the killed worker) is in the database, once, under its own idempotency key.
    assert len(rows) == len(by_key) == len({assessment_id for _, assessment_id in rows})
    assert {r["key"]: r["id"] for r in firsts} == {key: by_key[key] for key in (r["key"] for r in firsts)}
    assert len(rows) == len(firsts) + 1  # and the one chunked signup
    assert len({r["id"] for r in created}) == len(created)
    # A deliberate retry of an answered signup replays it: same id, 200, nothing new stored.
    assert retries and all(r["status"] == 200 and r["id"] == by_key[r["key"]] for r in retries)
    # The metrics of every worker are summed, the killed one's included (its last requests
    # in flight may not have been counted: at most one per client thread).
    assert acknowledged_verdicts >= len(created) - PROCESSES * THREADS


@pytest.fixture
def wsgi_app(settings):
    app = create_app(settings)
    yield app
    app.extensions["verify"].database.dispose()


def test_cursor_pagination_lists_each_assessment_exactly_once_while_signups_arrive(wsgi_app, database_url):
    if not any(rule.rule == "/v1/assessments" and "GET" in rule.methods for rule in wsgi_app.url_map.iter_rules()):
        pytest.skip("GET /v1/assessments (cursor pagination) is built on another branch; this runs once it is merged")
    assess_secret, _ = make_key(database_url, "pager-assess", ["assess"])
    admin_secret, _ = make_key(database_url, "pager-admin", ["admin"])
    client = wsgi_app.test_client()

    def post_many(prefix: str, count: int) -> list[str]:
        local = wsgi_app.test_client()
        return [
            local.post("/v1/assessments", json={"email": f"{prefix}.{n}@example-mail.com"}, headers=bearer(assess_secret)).get_json()["id"]
            for n in range(count)
        ]

    with ThreadPoolExecutor(4) as pool:
        existing = [i for ids in pool.map(post_many, [f"a{t}" for t in range(4)], [60] * 4) for i in ids]
    seen: list[str] = []
    cursor = None
    with ThreadPoolExecutor(2) as pool:
        arriving = [pool.submit(post_many, f"late{t}", 40) for t in range(2)]  # new signups while paging
        while True:
            query = {"limit": 25, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/assessments", query_string=query, headers=bearer(admin_secret))
            assert page.status_code == 200
            seen += [item["id"] for item in page.get_json()["items"]]
            cursor = page.get_json()["next_cursor"]
            if not cursor:
                break
        late = [i for future in arriving for i in future.result()]
    assert len(seen) == len(set(seen)), "an assessment was listed twice"
    assert set(existing) <= set(seen), "an assessment stored before paging began was skipped"
    assert set(seen) <= set(existing) | set(late)


class TcpProxy:
    """A loopback TCP proxy in front of PostgreSQL that the test can cut and restore.

    `cut(blackhole=False)` refuses new connections and resets the open ones (a crashed or
    restarted server); `cut(blackhole=True)` accepts connections and never answers (a
    network partition), which only a client-side timeout can end.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.blackhole = False
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def open(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self, *, blackhole: bool = False) -> None:
        self.blackhole = blackhole
        if not blackhole and self._listener is not None:
            # shutdown() first: a thread blocked in accept() keeps a merely closed listener alive.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self.blackhole = False
        if self._listener is None:
            self.open()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            if self.blackhole:
                continue  # held open, never answered
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.add(server)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass


@pytest.mark.parametrize("database_url", [p for p in BACKENDS if getattr(p, "values", None) == ("postgres",)], indirect=True)
@pytest.mark.parametrize("blackhole", [False, True], ids=["refused", "partition"])
def test_database_outage_gives_quick_503_and_recovers_by_itself(settings, database_url, blackhole):
    url = sa.engine.make_url(Database(database_url).url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).open()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=proxied))
    secret, _ = make_key(database_url, "outage", ["assess"])
    client = app.test_client()
    try:
        assert client.post("/v1/assessments", json={"email": "before@example-mail.com"}, headers=bearer(secret)).status_code == 201

        proxy.cut(blackhole=blackhole)
        started = time.monotonic()
        refused = client.post("/v1/assessments", json={"email": "during@example-mail.com"}, headers=bearer(secret))
        assert time.monotonic() - started < 5, "an assessment waited too long for an unreachable database"
        assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
        started = time.monotonic()
        ready = client.get("/readyz")
        assert time.monotonic() - started < 5
        assert ready.status_code == 503 and ready.get_json()["checks"]["database"]["status"] == "unavailable"

        proxy.restore()
        deadline = time.monotonic() + 15
        while (answer := client.post("/v1/assessments", json={"email": "after@example-mail.com"}, headers=bearer(secret))).status_code != 201:
            assert answer.status_code == 503
            assert time.monotonic() < deadline, "the service did not recover after the database came back"
            time.sleep(0.2)
        assert client.get("/readyz").status_code == 200
    finally:
        proxy.close()
        app.extensions["verify"].database.dispose()
