"""Where the CPU went during a measured run, read from Linux's /proc.

A ratio to bare Flask says how fast a server is, not why. These figures split each request's
CPU between the server under test (its whole process group: gunicorn's master and workers,
and verify's SQLite writer and background children), the PostgreSQL server on this machine
(every `postgres` process: backends, WAL writer, checkpointer), and the load generator; and
they say how busy the machine's cores were. A run whose cores are all busy is limited by the
CPU its requests cost; one that leaves them idle waits on something (a commit's sync).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessTimes:
    """One process, as /proc/<pid>/stat gives it."""

    command: str
    group: int
    seconds: float  # CPU time, user and system


def parse_stat(text: str) -> ProcessTimes:
    """A /proc/<pid>/stat line. The command sits in parentheses and may hold spaces and
    parentheses itself, so the fields are counted from its last closing one."""
    command = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # After the command: state, ppid, pgrp, ..., utime at index 11 and stime at 12 (proc(5)).
    return ProcessTimes(command, int(fields[2]), (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND)


def processes() -> list[ProcessTimes]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                found.append(parse_stat((entry / "stat").read_text()))
            except (OSError, ValueError):  # gone between the listing and the read
                continue
    return found


def machine_ticks(stat_line: str | None = None) -> tuple[int, int]:
    """(all, idle) ticks of every core since boot, from /proc/stat's first line; idle counts
    the time waiting for I/O too."""
    line = stat_line if stat_line is not None else (PROC / "stat").read_text().splitlines()[0]
    ticks = [int(value) for value in line.split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def children_seconds() -> float:
    """CPU time of this process's children that have ended and been waited for (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Readings at its start; `per_request` reads again and divides by the requests served."""

    def __init__(self, server_group: int) -> None:
        self.server_group = server_group
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, tuple[int, int]]:
        snapshot = processes()
        server = sum(process.seconds for process in snapshot if process.group == self.server_group)
        database = sum(process.seconds for process in snapshot if process.command == "postgres")
        return server, database, children_seconds(), machine_ticks()

    def per_request(self, requests: int) -> dict[str, float]:
        """ms of CPU per request for the server, the database and the load, and the machine's
        busy share; a process that ended during the run is missing from the server's figure."""
        server, database, load, (ticks, idle) = self._read()
        server0, database0, load0, (ticks0, idle0) = self.start
        per_ms = 1000 / max(requests, 1)
        return {
            "cpu_server": (server - server0) * per_ms,
            "cpu_database": (database - database0) * per_ms,
            "cpu_load": (load - load0) * per_ms,
            "busy": 1 - (idle - idle0) / max(ticks - ticks0, 1),
        }
