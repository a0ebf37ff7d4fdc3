"""The list-change log: every write to a list's entries, recorded in the writing transaction, so
that each worker applies only what changed since its index was current instead of rebuilding it.

Ordering across processes. Ids from a sequence are handed out when rows are inserted, not when
they commit: on PostgreSQL a writer can take id 10, another take id 11 and commit first, and a
worker that read up to 11 would never see 10. So a worker does not follow ids; it follows the
`lists` stamp. Each logging transaction bumps the stamp (an UPDATE that holds the stamp's row
lock until commit; SQLite holds its one write lock anyway) and records its changes under the
stamp's new value. Stamp values are therefore taken and committed one transaction at a time,
in order: once a worker reads stamp S, every change recorded under S or below is committed and
visible, and replaying stamps (its own, S] in order, with ids ordering rows within a stamp,
misses nothing. The lock is held from the bump to the commit only, which the writers already
did before this log existed.

Every stamp value has at least one row. A worker that finds a stamp in its range without rows
(pruned, or bumped by a writer that does not log) rebuilds from the table, as it does after a
`reset` (a change too large to be worth logging) or when it is far behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.engine.lists import ListChange, ListEntryValue
from verify.store.models import ListChangeRecord, ListDef, utcnow
from verify.store.stamps import LISTS_STAMP, bump_stamp

# A transaction that changes more entries than this logs one `reset` instead: applying that
# many one by one costs about as much as the rebuild, and it keeps large imports and feed
# syncs from writing every value twice.
MAX_LOGGED = 10_000
# A worker further behind than this many changes rebuilds rather than replays.
MAX_REPLAYED = 10_000
# How long changes are kept: a worker idle for longer rebuilds on its next request.
KEEP = timedelta(days=1)
_CHUNK = 5_000

Added = tuple[str, str | None, datetime | None]  # value, reason, expires_at


def log_list_changes(
    list_def: ListDef, *, added: Iterable[Added] = (), removed: Iterable[str] = (), session: Session
) -> None:
    """Bump the lists stamp and record these changes under its new value, in the caller's transaction.

    Nothing is recorded, and the stamp stays, when nothing changed.
    """
    added, removed = list(added), list(removed)
    if not added and not removed:
        return
    if len(added) + len(removed) > MAX_LOGGED:
        log_list_reset(list_def, session=session)
        return
    stamp, now = bump_stamp(LISTS_STAMP, session=session), utcnow()
    common = {"stamp": stamp, "list_name": list_def.name, "kind": list_def.kind, "action": list_def.action, "created_at": now}
    rows = [{**common, "op": "remove", "value": value, "reason": None, "expires_at": None} for value in removed]
    rows += [{**common, "op": "add", "value": value, "reason": reason, "expires_at": expires_at} for value, reason, expires_at in added]
    for start in range(0, len(rows), _CHUNK):
        session.execute(sa.insert(ListChangeRecord), rows[start:start + _CHUNK])
    prune_list_changes(before=now - KEEP, session=session)


def log_list_reset(list_def: ListDef, *, session: Session) -> None:
    """Record that the list changed in a way workers must rebuild for (too large, or not itemised)."""
    stamp, now = bump_stamp(LISTS_STAMP, session=session), utcnow()
    session.add(ListChangeRecord(
        stamp=stamp, list_name=list_def.name, kind=list_def.kind, action=list_def.action, op="reset", created_at=now,
    ))
    session.flush()
    prune_list_changes(before=now - KEEP, session=session)


def prune_list_changes(*, before: datetime, session: Session) -> int:
    """Delete the changes recorded before `before`; return how many went."""
    return session.execute(sa.delete(ListChangeRecord).where(col(ListChangeRecord.created_at) < before)).rowcount


def list_changes_after(stamp: int, *, until: int, session: Session) -> list[ListChange] | None:
    """The changes of stamps `stamp`+1 .. `until`, in the order they were made; None when the
    index must be rebuilt instead (a stamp without rows, a reset, or too many changes)."""
    if not stamp < until <= stamp + MAX_REPLAYED:
        return None
    rows = session.execute(
        select(
            ListChangeRecord.stamp, ListChangeRecord.op, ListChangeRecord.list_name, ListChangeRecord.kind,
            ListChangeRecord.action, ListChangeRecord.value, ListChangeRecord.reason, ListChangeRecord.expires_at,
        )
        .where(ListChangeRecord.stamp > stamp, ListChangeRecord.stamp <= until)
        .order_by(ListChangeRecord.stamp, ListChangeRecord.id)
        .limit(MAX_REPLAYED + 1)
    ).all()
    if len(rows) > MAX_REPLAYED or {row.stamp for row in rows} != set(range(stamp + 1, until + 1)):
        return None
    if any(row.op not in ("add", "remove") or row.value is None for row in rows):
        return None
    return [
        ListChange(row.op, ListEntryValue(row.list_name, row.kind, row.action, row.value, row.reason, row.expires_at))
        for row in rows
    ]
