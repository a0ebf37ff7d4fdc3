"""What a loop forked from gunicorn's arbiter (`verify serve`'s deliveries and revisions) needs
to stop cleanly: the arbiter's signal handlers replaced by one event."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# The arbiter's own handlers for these would act on its workers from the child.
DEFAULT_SIGNALS = (signal.SIGHUP, signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2,
                   signal.SIGWINCH)


def stop_event() -> threading.Event:
    """An event set on SIGTERM, SIGINT or SIGQUIT (the arbiter sends SIGTERM on exit)."""
    signal.set_wakeup_fd(-1)
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    for signum in DEFAULT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    return stop
