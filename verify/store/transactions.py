"""The one way a change is made to last: commit, with one rerun when a concurrent writer won a unique key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from verify.errors import Conflict

Result = TypeVar("Result")


def committed(work: Callable[[], Result], *, session: Session, conflict: str) -> Result:
    """Run `work` in `session` and commit; rerun it once if a concurrent change collided on a unique key.

    Two admins adding the same value, two policy versions numbered at once, or two retries of
    one signup under one Idempotency-Key collide on a unique key; the second attempt sees the
    first one's change and usually just succeeds. A second collision is a Conflict (`conflict`
    says what to do about it).
    """
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


def commit(session: Session, *, conflict: str = "a concurrent change collided with this one; try again") -> None:
    """Commit what `session` holds; a unique-key collision is a Conflict (`conflict` says what to do)."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(conflict) from None
