"""First start: built-in lists, the seeded disposable list, policy version 1."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from verify.engine.lists import DISPOSABLE_LIST
from verify.store.lists import ensure_builtin_lists, insert_entries
from verify.store.policy import add_policy_version, current_policy


def bootstrap(
    *, session: Session, default_policy: dict, disposable: tuple[list[str], str] | Callable[[], tuple[list[str], str]]
) -> None:
    """Idempotent: only what is missing is created; an admin's later changes are kept.

    `disposable` may be a function: normalising the seed takes seconds, and every CLI command
    bootstraps, so it is only worth doing when the list is created.
    """
    created = {row.name: row for row in ensure_builtin_lists(session=session)}
    if DISPOSABLE_LIST in created:
        values, source = disposable() if callable(disposable) else disposable
        insert_entries(created[DISPOSABLE_LIST], values, source=source, session=session)
    if current_policy(session=session) is None:
        add_policy_version(default_policy, actor="system", session=session)
