"""Gunicorn, embedded: `verify serve` runs create_app() in each worker."""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors as http_errors
from gunicorn.workers.sync import SyncWorker

from verify import children, metrics
from verify.api.errors import PROBLEM_TYPE
from verify.api.request_size import GUNICORN_LIMITS
from verify.delivery import run_delivery_child
from verify.revising import run_drain_child
from verify.settings import Settings
from verify.store import driver, group_commit

# gunicorn's own answers to requests it cannot parse, as problem+json like every other answer
# instead of its HTML page. Errors it answers with another status (403, 417, 501) or that are
# the application's (a bad response header) keep gunicorn's handling.
PARSE_ERRORS: tuple[tuple[type[Exception], int, str, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "uri-too-long", "URI Too Long",
     f"the request line is longer than {GUNICORN_LIMITS['limit_request_line']} bytes; send large inputs in a body"),
    (http_errors.LimitRequestHeaders, 431, "request-header-fields-too-large", "Request Header Fields Too Large",
     "a header field is too long, or there are too many of them"),
    (http_errors.InvalidRequestLine, 400, "malformed-request", "Bad Request", "the request line cannot be read"),
    (http_errors.InvalidRequestMethod, 400, "malformed-request", "Bad Request", "the request method cannot be read"),
    (http_errors.InvalidHTTPVersion, 400, "malformed-request", "Bad Request", "the HTTP version is not supported"),
    (http_errors.InvalidHeaderName, 400, "malformed-request", "Bad Request", "a header name cannot be read"),
    (http_errors.InvalidHeader, 400, "malformed-request", "Bad Request", "a header cannot be read"),
    (http_errors.ObsoleteFolding, 400, "malformed-request", "Bad Request", "obsolete header line folding is refused"),
    (http_errors.InvalidChunkSize, 400, "malformed-request", "Bad Request", "the chunked body cannot be read"),
    (http_errors.ChunkMissingTerminator, 400, "malformed-request", "Bad Request", "the chunked body cannot be read"),
    (http_errors.InvalidChunkExtension, 400, "malformed-request", "Bad Request", "the chunked body cannot be read"),
)


def problem_bytes(status: int, slug: str, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 response carrying a problem document; the connection closes after it."""
    body = json.dumps({"type": PROBLEM_TYPE + slug, "title": title, "status": status, "detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class ProblemWorker(SyncWorker):
    """gunicorn's sync worker, answering requests it cannot parse in problem+json."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        for kind, status, slug, title, detail in PARSE_ERRORS:
            if isinstance(exc, kind):
                # The exception's text quotes the request; the log gets only its class.
                self.log.warning("refused an unreadable request from %s: %s", (addr or ("",))[0], type(exc).__name__)
                try:
                    client.sendall(problem_bytes(status, slug, title, detail))
                except OSError:
                    self.log.debug("failed to send the error answer")
                return
        super().handle_error(req, client, addr, exc)


# Settings newer gunicorn releases know; skipped where the installed one does not.
OPTIONAL_SETTINGS = frozenset({"control_socket_disable"})


class VerifyServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any], background: list[Background]) -> None:
        self.settings = settings
        self.options = options
        self.background = background  # the arbiter keeps them running
        super().__init__()

    def run(self) -> None:
        try:
            VerifyArbiter(self).run()
        except RuntimeError as error:  # as gunicorn's own run(): a configuration it refuses
            print(f"\nError: {error}\n", file=sys.stderr)
            sys.exit(1)

    def load_config(self) -> None:
        for name, value in self.options.items():
            if name in OPTIONAL_SETTINGS and name not in self.cfg.settings:
                continue  # a gunicorn older than the setting has nothing to turn off
            self.cfg.set(name, value)

    def load(self):
        from verify.app import create_app

        return create_app(self.settings)


def _worker_exited(_server: Any, worker: Any) -> None:
    # A killed or recycled worker's live gauges must not linger in the sums /metrics shows.
    metrics.mark_process_dead(worker.pid)


def _worker_init(worker: Any) -> None:
    path = os.environ.get(group_commit.SOCKET_ENV)
    if path and worker.wsgi.extensions["verify"].settings.sqlite_group_commit:
        driver.writer = group_commit.Client(path)  # this worker's assessments commit in the writer
    # The app, its reference data and its caches are built now and live as long as the worker:
    # out of the collector's sight, a full collection no longer walks them (it paused a request
    # for 15 to 73 ms every few thousand assessments).
    gc.freeze()


def metrics_directory() -> str:
    """A fresh directory for the workers' metric files, named in the environment before they fork."""
    directory = tempfile.mkdtemp(prefix="verify-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = directory
    # The master made its app (and so maybe its collectors, in memory) before this: the
    # workers it forks must make their own, writing to the directory.
    metrics.collectors.cache_clear()
    return directory


@dataclass
class Background:
    """A process `verify serve` forks from gunicorn's arbiter beside its workers: a supervisor
    (verify/children.py) that keeps its own child running (the deliveries, the revision drain,
    the SQLite writer), and that the arbiter starts again if it dies (VerifyArbiter).

    Forked in `when_ready`, before the workers: the arbiter has no threads (then or later), so
    the fork is safe, and the workers never learn of it (a multiprocessing child would be
    terminated by the atexit handler of every worker that exits). It stops on SIGTERM, which
    the arbiter sends it on exit, and by itself once the arbiter is gone.
    """

    what: str  # the supervised process's name: "revision jobs"
    fork: Callable[[Any], int]  # forks the supervisor from the arbiter; its pid
    cleanup: Callable[[], None] = lambda: None  # after it stopped, on the arbiter's exit
    pid: int = 0
    started: float = 0.0

    def start(self, arbiter: Any) -> None:
        self.pid, self.started = self.fork(arbiter), time.monotonic()

    def gone(self) -> bool:
        return children.exit_status(self.pid) is not None


# A supervisor that keeps dying is started again at most this often (seconds).
SUPERVISOR_RESTART_PAUSE = 1.0


class VerifyArbiter(Arbiter):
    """gunicorn's arbiter, which also starts a background process's supervisor again if it
    died (killed by hand or by the kernel's OOM killer): once a second it looks, as it does for
    its workers."""

    def manage_workers(self) -> None:
        super().manage_workers()
        for process in self.app.background:
            if process.pid and time.monotonic() - process.started >= SUPERVISOR_RESTART_PAUSE and process.gone():
                self.log.warning("the supervisor of the %s (process %s) is gone; starting another", process.what, process.pid)
                metrics.record_background_restart(process.what)
                process.start(self)


def supervised(run: Callable[[int], None], *, what: str) -> Background:
    """A Background whose supervisor keeps `run(supervisor_pid)` running."""
    return Background(what, lambda arbiter: _fork_child(
        arbiter, lambda: children.keep_running(run, what=what, parent_pid=arbiter.pid, log=arbiter.log),
        failure=f"the supervisor of the {what} stopped",
    ))


def sqlite_writer(settings: Settings, database_path: str) -> Background:
    """SQLite's group-commit writer (store/group_commit.py) under its supervisor. The socket is
    bound before each fork, at one path in a directory only this user can enter, made at the
    first start: the workers learn the path from the environment they inherit (they are forked
    after `when_ready`), and connect to it again after a restart."""
    state: dict[str, str] = {}

    def fork(arbiter: Any) -> int:
        if "path" not in state:
            state["path"] = os.environ[group_commit.SOCKET_ENV] = group_commit.private_socket_path()
        listener = group_commit.listen(state["path"])
        pid = _fork_child(
            arbiter, lambda: group_commit.supervise(listener, database_path, settings.sqlite_synchronous, parent_pid=arbiter.pid),
            failure="the SQLite writer's supervisor stopped",
        )
        listener.close()  # the supervisor holds it; the workers need only its path
        return pid

    def cleanup() -> None:
        if "path" in state:
            shutil.rmtree(os.path.dirname(state["path"]), ignore_errors=True)

    return Background("SQLite writer", fork, cleanup=cleanup)


def background_processes(settings: Settings) -> list[Background]:
    """What `verify serve` runs beside its workers, by the settings."""
    found = []
    database_path = group_commit.sqlite_path(settings.database_url)
    if settings.sqlite_group_commit and database_path:
        found.append(sqlite_writer(settings, database_path))
    if settings.serve_deliveries:
        found.append(supervised(lambda parent: run_delivery_child(settings, parent_pid=parent), what="webhook deliveries"))
    if settings.serve_revisions:
        found.append(supervised(lambda parent: run_drain_child(settings, parent_pid=parent), what="revision jobs"))
    return found


def _fork_child(arbiter: Any, run: Callable[[], None], *, failure: str) -> int:
    """Fork a child of the arbiter that runs `run` (verify/children.py); it closes the arbiter's
    listeners, which are the workers' to accept on."""
    def in_child() -> None:
        for listener in arbiter.LISTENERS:
            listener.close()
        run()

    return children.fork(in_child, log=arbiter.log, failure=failure)


def background_hooks(background: list[Background]) -> dict[str, Any]:
    """gunicorn hooks that start the background processes when the arbiter is ready and stop
    them when it exits (none when there are none)."""
    if not background:
        return {}

    def when_ready(arbiter: Any) -> None:
        for process in background:
            process.start(arbiter)

    def on_exit(_arbiter: Any) -> None:
        for process in background:
            if process.pid:
                children.terminate(process.pid)
        for process in background:
            process.cleanup()

    return {"when_ready": when_ready, "on_exit": on_exit}


def server_options(settings: Settings, *, host: str, port: int, workers: int, background: list[Background]) -> dict[str, Any]:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": ProblemWorker,
        **GUNICORN_LIMITS,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "proc_name": "verify",  # `ps` shows "gunicorn: master [verify]", "gunicorn: worker [verify]"
        "errorlog": "-",
        "child_exit": _worker_exited,
        # gunicorn 25.1 opens a control socket at one path per user ($XDG_RUNTIME_DIR or
        # ~/.gunicorn/gunicorn.ctl): two instances on one host shared it, and stopping one
        # removed it for the other. Nothing here uses it.
        "control_socket_disable": True,
        "post_worker_init": _worker_init,
    }
    options.update(background_hooks(background))
    return options


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    directory = metrics_directory()
    background = background_processes(settings)
    try:
        VerifyServer(settings, server_options(settings, host=host, port=port, workers=workers, background=background),
                     background).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
