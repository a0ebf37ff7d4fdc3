"""`python -m verify.database_wait`: wait until the configured database answers (a container's first step).

A container that starts beside its database (compose starts both at once) would otherwise
fail its migrations and restart until the database is up; this waits, names the database it
waits for (without credentials) and gives up after VERIFY_DB_WAIT_SECONDS (default 60).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import sqlalchemy as sa

from verify.doctor import shown_url
from verify.settings import Settings, SettingsError
from verify.store.database import Database

DEFAULT_WAIT_SECONDS = 60.0
PAUSE_SECONDS = 1.0


def wait_for_database(
    url: str, *, timeout: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic
) -> bool:
    """True once the database answers a query; False when `timeout` seconds pass first."""
    database = Database(url)
    deadline = clock() + timeout
    waited = False
    try:
        while True:
            try:
                database.ping()
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
                if clock() >= deadline:
                    say(f"the database {shown_url(url)} did not answer within {timeout:g} s ({type(error).__name__})")
                    return False
                if not waited:
                    say(f"waiting for the database {shown_url(url)} ({type(error).__name__})")
                    waited = True
                time.sleep(min(PAUSE_SECONDS, max(0.0, deadline - clock())))
                continue
            say(f"database {shown_url(url)} answers")
            return True
    finally:
        database.dispose()


def main() -> int:
    def say(line: str) -> None:
        print(f"verify.database_wait: {line}", file=sys.stderr, flush=True)

    try:
        settings = Settings.from_env()
        timeout = float(os.environ.get("VERIFY_DB_WAIT_SECONDS", DEFAULT_WAIT_SECONDS))
    except (SettingsError, ValueError) as error:
        say(f"cannot read the configuration: {error}")
        return 2
    return 0 if wait_for_database(settings.database_url, timeout=timeout, say=say) else 1


if __name__ == "__main__":
    sys.exit(main())
