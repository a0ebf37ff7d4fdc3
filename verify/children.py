"""What a process forked from gunicorn's arbiter (`verify serve`'s deliveries, revisions and
SQLite writer) needs to stop cleanly: the arbiter's signal handlers replaced by its own."""

from __future__ import annotations

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
