"""The one loop of `verify worker`: each periodic task runs when its interval has passed.

A task returns results that can describe themselves (a feed sync, a webhook delivery); the
loop prints them and, with `once`, runs every task one time and says whether one failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from verify.children import Stop
from verify.errors import Unavailable

log = logging.getLogger(__name__)


class Result(Protocol):
    @property
    def failed(self) -> bool: ...

    def describe(self) -> str: ...


@dataclass
class Periodic:
    """A task and how often it runs (seconds between the end of one look and the next)."""

    name: str
    every: float
    run: Callable[[], Sequence[Result]]
    due: float = 0.0  # time.monotonic() at which it runs next


class DatabaseDown(Unavailable):
    """The database failed during a `--once` round."""


def run_periodic(
    tasks: Sequence[Periodic],
    *,
    once: bool,
    stop: Stop,
    report: Callable[[Result], None],
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Run each task when due until `stop` is set (or one round with `once`); True if a result failed."""
    failed = False
    while True:
        for task in tasks:
            if not once and clock() < task.due:
                continue
            try:
                results = task.run()
            except SQLAlchemyError as error:  # the database is away: say so, and look again next round
                if once:
                    raise DatabaseDown(f"the database failed: {error.__class__.__name__}") from error
                log.warning("worker: %s: the database failed (%s); trying again in %g s", task.name, error.__class__.__name__, task.every)
                results = []
            task.due = clock() + task.every
            for result in results:
                report(result)
                failed = failed or result.failed
        if once:
            return failed
        if stop.wait(max(0.0, min(task.due for task in tasks) - clock())):
            return failed
