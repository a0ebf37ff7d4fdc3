"""Gunicorn, embedded: `verify serve` runs create_app() in each worker."""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
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
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

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


def child_hooks(run: Callable[[int], None], *, what: str) -> dict[str, Any]:
    """gunicorn hooks that run `run(arbiter_pid)` in a child of the arbiter, so that the
    embedded default needs no other process: the webhook deliveries
    (`VERIFY_SERVE_DELIVERIES`) and the revision jobs (`VERIFY_SERVE_REVISIONS`), each off
    when a separate `verify worker` does it.

    The child is forked in `when_ready`, before the workers: the arbiter has no threads then,
    so the fork is safe, and the workers never learn of it (a multiprocessing child would be
    terminated by the atexit handler of every worker that exits). It is a supervisor that runs
    `run` in a child of its own and starts it again if it dies (killed by the kernel's OOM
    killer, say); `run` gets the supervisor's pid. It stops on SIGTERM, which the arbiter sends
    it on exit, and by itself once the arbiter is gone.
    """
    child: dict[str, int] = {}

    def when_ready(arbiter: Any) -> None:
        child["pid"] = _fork_child(
            arbiter, lambda: children.keep_running(run, what=what, parent_pid=arbiter.pid, log=arbiter.log),
            failure=f"the supervisor of the {what} stopped",
        )

    def on_exit(_arbiter: Any) -> None:
        if "pid" in child:
            children.terminate(child["pid"])

    return {"when_ready": when_ready, "on_exit": on_exit}


def writer_hooks(settings: Settings, database_path: str) -> dict[str, Any]:
    """gunicorn hooks that run SQLite's group-commit writer (store/group_commit.py) under a
    supervisor forked from the arbiter in `when_ready`, as the deliveries are. The socket is
    bound here, before the fork and the workers, in a directory only this user can enter; the
    workers learn its path from the environment they inherit."""
    state: dict[str, Any] = {}

    def when_ready(arbiter: Any) -> None:
        path = group_commit.private_socket_path()
        listener = group_commit.listen(path)
        pid = _fork_child(
            arbiter, lambda: group_commit.supervise(listener, database_path, settings.sqlite_synchronous, parent_pid=arbiter.pid),
            failure="the SQLite writer's supervisor stopped",
        )
        listener.close()  # the supervisor holds it; the workers need only its path
        os.environ[group_commit.SOCKET_ENV] = path
        state.update(pid=pid, directory=os.path.dirname(path))

    def on_exit(_arbiter: Any) -> None:
        # The workers have stopped by now; the writer answers the groups it holds, then exits.
        if "pid" in state:
            children.terminate(state["pid"])
            shutil.rmtree(state["directory"], ignore_errors=True)

    return {"when_ready": when_ready, "on_exit": on_exit}


def _fork_child(arbiter: Any, run: Callable[[], None], *, failure: str) -> int:
    """Fork a child of the arbiter that runs `run` (verify/children.py); it closes the arbiter's
    listeners, which are the workers' to accept on."""
    def in_child() -> None:
        for listener in arbiter.LISTENERS:
            listener.close()
        run()

    return children.fork(in_child, log=arbiter.log, failure=failure)


def _chained(*hook_sets: dict[str, Any]) -> dict[str, Any]:
    """Several sets of gunicorn hooks as one: a hook named in more than one runs each in turn."""
    named: dict[str, list] = {}
    for hooks in hook_sets:
        for name, hook in hooks.items():
            named.setdefault(name, []).append(hook)

    def chain(hooks: list):
        def run(server: Any) -> None:  # gunicorn checks a hook's arity: when_ready and on_exit take one
            for hook in hooks:
                hook(server)
        return run

    return {name: hooks[0] if len(hooks) == 1 else chain(hooks) for name, hooks in named.items()}


def server_options(settings: Settings, *, host: str, port: int, workers: int) -> dict[str, Any]:
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
    hook_sets = []
    database_path = group_commit.sqlite_path(settings.database_url)
    if settings.sqlite_group_commit and database_path:
        hook_sets.append(writer_hooks(settings, database_path))
    if settings.serve_deliveries:
        hook_sets.append(child_hooks(lambda parent: run_delivery_child(settings, parent_pid=parent), what="webhook deliveries"))
    if settings.serve_revisions:
        hook_sets.append(child_hooks(lambda parent: run_drain_child(settings, parent_pid=parent), what="revision jobs"))
    options.update(_chained(*hook_sets))
    return options


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    directory = metrics_directory()
    try:
        VerifyServer(settings, server_options(settings, host=host, port=port, workers=workers)).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
