"""The processes `verify serve` forks beside its workers (deliveries, revisions, the SQLite
writer and its supervisor): forked so that they never return into their parent's code,
stopped by SIGTERM, with the arbiter's signal handlers replaced by their own."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

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


def stop_event() -> threading.Event:
    """An event set when the child is told to stop."""
    stop = threading.Event()
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


def terminate(pid: int) -> None:
    """Ask a child to stop (SIGTERM), if it still runs."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
