"""verify/children.py: a background process told to stop by a signal stops, whatever its main
thread was doing when the signal came."""

from __future__ import annotations

import os
import signal
import time

from verify.children import stop_event

PROCESSES = 12


def wait_in_tight_loop() -> None:
    """A child that spends nearly all its time inside `stop.wait` (the deliveries and the drain
    wait between rounds), until SIGTERM stops it."""
    stop = stop_event()
    os.write(1, b"")  # started
    while not stop.is_set():
        stop.wait(0)
    os._exit(0)


def test_sigterm_during_a_wait_stops_the_process():
    # threading.Event.set() in the handler takes the lock the interrupted wait() holds at
    # times: one SIGTERM in that instant deadlocked the process for good.
    children = []
    for _ in range(PROCESSES):
        pid = os.fork()
        if pid == 0:
            try:
                wait_in_tight_loop()
            finally:
                os._exit(1)
        children.append(pid)
    time.sleep(0.3)
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    stuck = set(children)
    while stuck and time.monotonic() < deadline:
        for pid in list(stuck):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0
                stuck.discard(pid)
        time.sleep(0.02)
    for pid in stuck:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not stuck, f"{len(stuck)} of {PROCESSES} processes hung on SIGTERM"
