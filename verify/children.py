"""The processes `verify serve` forks beside its workers (deliveries, revisions, the SQLite
writer), each under a supervisor that starts it again if it dies: forked so that they never
return into their parent's code, stopped by SIGTERM, with the arbiter's signal handlers
replaced by their own, and named for `ps` and `top` ("verify: revision jobs")."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import setproctitle

from verify import metrics

# A child that dies is started again after RESTART_PAUSE; one that keeps dying young (within
# YOUNG seconds) waits twice as long each time, up to LONGEST_PAUSE, instead of spinning.
RESTART_PAUSE = 0.05
LONGEST_PAUSE = 5.0
YOUNG = 10.0

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# The arbiter's own handlers for these would act on its workers from the child.
DEFAULT_SIGNALS = (signal.SIGHUP, signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2,
                   signal.SIGWINCH)


def replace_arbiter_signals(on_stop: Callable[..., Any]) -> None:
    """In a child forked from gunicorn's arbiter: `on_stop` on SIGTERM, SIGINT and SIGQUIT (the
    arbiter sends SIGTERM on exit), the defaults for the signals the arbiter handles."""
    signal.set_wakeup_fd(-1)
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_stop)
    for signum in DEFAULT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


class StopFlag:
    """Set by a signal handler, waited on by the main thread: threading.Event's interface without
    its lock. Event.set() takes a lock that the interrupted Event.wait() holds at moments, so a
    SIGTERM arriving in one of them deadlocked the process for good (a webhook deliveries child
    outlived its server by an hour, and its supervisor with it)."""

    SLICE = 0.05  # how soon a wait notices the flag: sleeps are resumed after a handler (PEP 475)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.SLICE if deadline is None else min(self.SLICE, deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self._set


# What a loop that runs until told to stop takes: a StopFlag in a process stopped by signals,
# a threading.Event where a thread stops it (tests, a development server).
Stop = StopFlag | threading.Event


def stop_on_signals() -> StopFlag:
    """A flag that SIGTERM and SIGINT set, for a process in the foreground (`verify worker`, a
    writer run by hand)."""
    stop = StopFlag()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def stop_event() -> StopFlag:
    """In a child forked from gunicorn's arbiter: a flag set when the child is told to stop."""
    stop = StopFlag()
    replace_arbiter_signals(lambda *_: stop.set())
    return stop


def fork(run: Callable[[], None], *, log: Any, failure: str) -> int:
    """Fork a child that runs `run` and exits (status 1, `failure` logged with the error, if it
    raised), never returning into the parent's code; the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run()
        except BaseException:  # noqa: BLE001 (the child must never return into its parent's code)
            log.exception(failure)
            code = 1
        finally:
            os._exit(code)
    return pid


def name(title: str) -> None:
    """This process's name in `ps` and `top`: "verify: <title>"."""
    setproctitle.setproctitle(f"verify: {title}")


def keep_running(run: Callable[[int], None], *, what: str, parent_pid: int, log: Any) -> None:
    """In a supervisor forked from gunicorn's arbiter: keep one child running `run(supervisor_pid)`,
    named `what`, started again whenever it dies, until told to stop or the arbiter is gone.
    The child should return once its parent (this process) is gone."""
    name(f"{what} supervisor")
    stop = StopFlag()
    child = {"pid": 0}

    def on_stop(*_: Any) -> None:
        stop.set()
        if child["pid"]:
            terminate(child["pid"])

    replace_arbiter_signals(on_stop)
    supervisor, pause = os.getpid(), RESTART_PAUSE
    while not stop.is_set() and os.getppid() == parent_pid:
        started = time.monotonic()
        pid = child["pid"] = fork(lambda: (name(what), run(supervisor)), log=log, failure=f"{what} stopped")
        log.info("%s in process %s", what, pid)
        status = _wait(pid, stop=stop, parent_pid=parent_pid)
        child["pid"] = 0
        if status is None:  # told to stop, or the arbiter is gone: the child was asked to stop too
            return
        pause = RESTART_PAUSE if time.monotonic() - started > YOUNG else min(pause * 2, LONGEST_PAUSE)
        code = os.waitstatus_to_exitcode(status)
        ended = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        log.warning("%s (process %s) %s; started again in %g s", what, pid, ended, pause)
        metrics.record_background_restart(what)
        stop.wait(pause)


def exit_status(pid: int) -> int | None:
    """A child's wait status once it has ended (0 when something else reaped it, as gunicorn's
    arbiter does with its waitpid(-1)); None while it runs. Never blocks."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if done else None


def _wait(pid: int, *, stop: StopFlag, parent_pid: int) -> int | None:
    """The child's exit status once it ends; None (after stopping it) when this supervisor is
    told to stop or its parent is gone first."""
    while True:
        status = exit_status(pid)
        if status is not None:
            return None if stop.is_set() else status  # stopped by on_stop, or died by itself
        if stop.is_set() or os.getppid() != parent_pid:
            terminate(pid)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.05)


def terminate(pid: int) -> None:
    """Ask a child to stop (SIGTERM), if it still runs."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
