"""Per-stage durations of one request, shown in a Server-Timing header (VERIFY_SERVER_TIMING).

A regression then points at its stage: auth, validation, gather, lists, history, judge,
record, commit, respond (the answer's JSON), logging (the verdict's counters, the access log
line and the request metrics; verify/api/server_timing.py). Switched off, `mark` returns at once.
"""

from __future__ import annotations

import time


class Stages:
    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.spent: dict[str, float] = {}
        self._last = time.perf_counter() if enabled else 0.0

    @classmethod
    def off(cls) -> Stages:
        return _OFF

    def mark(self, stage: str) -> None:
        """The time since the last mark was spent in `stage`."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self.spent[stage] = self.spent.get(stage, 0.0) + (now - self._last)
        self._last = now

    def header(self) -> str:
        """The Server-Timing value (W3C): `auth;dur=0.081, history;dur=0.310` in milliseconds."""
        return ", ".join(f"{stage};dur={seconds * 1000:.3f}" for stage, seconds in self.spent.items())


_OFF = Stages(enabled=False)
