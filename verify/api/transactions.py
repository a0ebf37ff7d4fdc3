"""Committing a request's change, with one retry when a concurrent writer won a unique constraint."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from verify.api.context import db_session
from verify.errors import Conflict

Result = TypeVar("Result")


def committed(work: Callable[[], Result], *, conflict: str) -> Result:
    """Run `work` in the request's session and commit; rerun it once if a concurrent change collided.

    Two admins adding the same value, or two policy versions numbered at once, collide on a
    unique key; the second attempt sees the first one's change and usually just succeeds.
    """
    session = db_session()
    for attempt in range(2):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt:
                raise Conflict(conflict) from None
    raise AssertionError("unreachable")
