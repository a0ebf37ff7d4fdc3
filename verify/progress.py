"""Progress of long CLI jobs (imports, purges, downloads) on a terminal; nothing in logs.

A bar is drawn on stderr only when stderr is a terminal: under cron, systemd or a container
log collector the job writes its result lines and nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)



class Bar:
    """What a job tells its bar: how much is done, and the total once it is known."""

    def __init__(self, advance: Callable[[int], None] = lambda _n: None, set_total: Callable[[int | None], None] = lambda _n: None) -> None:
        self.advance = advance
        self.set_total = set_total


def _console(stream: TextIO | None) -> Console:
    stream = stream if stream is not None else sys.stderr
    # Decided here, not by rich's environment sniffing: FORCE_COLOR must not draw bars into logs.
    return Console(file=stream, force_terminal=stream.isatty())


def is_shown(stream: TextIO | None = None) -> bool:
    """Whether a bar would be drawn on this stream (stderr by default)."""
    return _console(stream).is_terminal


@contextmanager
def progress(
    label: str, *, total: int | None = None, unit: str = "items", stream: TextIO | None = None
) -> Iterator[Bar]:
    """A bar for one job, drawn only on a terminal. `unit="bytes"` shows sizes and speed."""
    console = _console(stream)
    if not console.is_terminal:
        yield Bar()
        return
    if unit == "bytes":
        columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    else:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield Bar(lambda n: bar.advance(task, n), lambda n: bar.update(task, total=n))
