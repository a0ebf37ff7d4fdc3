"""Feeds: the table of public sources that fill lists, and the atomic replace of one source's entries.

Each feed owns the entries whose `source` is `feed:<name>` on its list; a sync replaces
exactly those, in one transaction, and leaves every other entry (an admin's, a file's, another
feed's) alone. A value that another source holds already stays that source's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from verify.errors import Conflict, NotFound, VerifyError
from verify.store.audit import record_audit
from verify.store.list_changes import Added, log_list_changes
from verify.store.lists import get_list
from verify.store.models import utcnow
from verify.store.models import ListDef, ListEntry, utc_column

SOURCE_PREFIX = "feed:"
AUDIT_VALUES_LIMIT = 20
_CHUNK = 500


class ShrinkRefused(VerifyError):
    """The download would take away more of the list than the configured share."""


class Feed(SQLModel, table=True):
    """A public source (a URL in a known format) that fills one list on a schedule."""

    __tablename__ = "feeds"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    url: str = Field(max_length=2000)
    list_id: int = Field(foreign_key="lists.id", ondelete="CASCADE", index=True)
    format: str = Field(max_length=16)
    interval_seconds: int = 6 * 3600
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    next_sync_at: datetime | None = utc_column(nullable=True, index=True)
    last_sync_at: datetime | None = utc_column(nullable=True)
    last_success_at: datetime | None = utc_column(nullable=True)
    last_status: str | None = Field(default=None, max_length=16)  # ok | unchanged | failed | refused
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)


def feed_source(name: str) -> str:
    """The provenance a feed's entries carry."""
    return f"{SOURCE_PREFIX}{name}"


# The few calls into the list and audit queries, in one place.
def _list_changed(list_def: ListDef, *, added: list[Added], removed: list[str], session: Session) -> None:
    list_def.updated_at = utcnow()
    session.add(list_def)
    log_list_changes(list_def, added=added, removed=removed, session=session)


def _audit(actor: str, action: str, target: str, detail: dict, *, session: Session) -> None:
    record_audit(actor, action, target=target, detail=detail, session=session)


def add_feed(
    name: str, *, url: str, list_name: str, feed_format: str, interval: timedelta, actor: str, session: Session
) -> Feed:
    """A new feed filling `list_name`; Conflict when the name is taken, NotFound without the list."""
    list_def = get_list(list_name, session=session)
    if session.exec(select(Feed.id).where(Feed.name == name)).first() is not None:
        raise Conflict(f"a feed named {name!r} exists already")
    feed = Feed(
        name=name, url=url, list_id=list_def.id, format=feed_format, interval_seconds=int(interval.total_seconds()),
        created_at=utcnow(), created_by=actor,
    )
    session.add(feed)
    session.flush()
    detail = {"url": url, "list": list_def.name, "format": feed_format, "interval_seconds": feed.interval_seconds}
    _audit(actor, "feed.add", name, detail, session=session)
    return feed


def get_feed(name: str, *, session: Session) -> tuple[Feed, ListDef]:
    row = session.exec(select(Feed, ListDef).join(ListDef, ListDef.id == Feed.list_id).where(Feed.name == name)).first()
    if row is None:
        raise NotFound(f"no feed named {name!r}")
    return row[0], row[1]


def list_feeds(*, session: Session) -> list[tuple[Feed, ListDef, int]]:
    """Every feed with its list and the number of entries it holds there, by name."""
    owned = (
        select(ListEntry.list_id, ListEntry.source, sa.func.count().label("entries"))
        .where(col(ListEntry.source).startswith(SOURCE_PREFIX))
        .group_by(ListEntry.list_id, ListEntry.source)
        .subquery()
    )
    rows = session.exec(
        select(Feed, ListDef, sa.func.coalesce(owned.c.entries, 0))
        .join(ListDef, ListDef.id == Feed.list_id)
        .outerjoin(owned, sa.and_(owned.c.list_id == Feed.list_id, owned.c.source == SOURCE_PREFIX + Feed.name))
        .order_by(Feed.name)
    )
    return [(feed, list_def, int(count)) for feed, list_def, count in rows]


def remove_feed(name: str, *, keep_entries: bool, actor: str, session: Session) -> int:
    """Delete the feed and, unless kept, the entries it put on its list; return how many went."""
    feed, list_def = get_feed(name, session=session)
    removed = 0
    if not keep_entries:
        owned = ListEntry.list_id == list_def.id, ListEntry.source == feed_source(name)
        values = list(session.exec(select(ListEntry.value).where(*owned)))
        removed = session.execute(sa.delete(ListEntry).where(*owned)).rowcount
        if removed:
            _list_changed(list_def, added=[], removed=values, session=session)
    session.delete(feed)
    _audit(actor, "feed.remove", name, {"list": list_def.name, "entries_removed": removed, "kept_entries": keep_entries}, session=session)
    return removed


def claim_due_feeds(*, now: datetime, lease: timedelta, session: Session) -> list[str]:
    """Names of the feeds due for a sync, each claimed for `lease` so that other workers skip it.

    The claim is one conditional UPDATE per feed: of two workers that read the same due feed,
    only the one whose UPDATE still sees it due gets a row back.
    """
    due = list(session.exec(
        select(Feed.name).where(sa.or_(col(Feed.next_sync_at).is_(None), col(Feed.next_sync_at) <= now)).order_by(Feed.name)
    ))
    claimed = []
    for name in due:
        updated = session.execute(
            sa.update(Feed)
            .where(Feed.name == name, sa.or_(col(Feed.next_sync_at).is_(None), col(Feed.next_sync_at) <= now))
            .values(next_sync_at=now + lease)
        )
        if updated.rowcount:
            claimed.append(name)
    return claimed


def record_sync(
    name: str,
    *,
    status: str,
    at: datetime,
    error: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    retry_after: timedelta | None = None,
    session: Session,
) -> None:
    """Note a sync's outcome and when the next one is due; validators only change on success."""
    feed, _ = get_feed(name, session=session)
    feed.last_sync_at = at
    feed.last_status = status
    feed.last_error = error[:1000] if error else None
    if status in ("ok", "unchanged"):
        feed.last_success_at = at
        feed.next_sync_at = at + timedelta(seconds=feed.interval_seconds)
    else:
        feed.next_sync_at = at + min(timedelta(seconds=feed.interval_seconds), retry_after or timedelta(minutes=30))
    if status == "ok":
        feed.etag, feed.last_modified = etag, last_modified
    session.add(feed)


def replace_source_entries(
    list_def: ListDef,
    values: list[str],
    *,
    source: str,
    max_shrink: float,
    force: bool,
    actor: str,
    detail: dict | None = None,
    session: Session,
) -> tuple[int, int, int]:
    """Make `source` hold exactly `values` on the list (those no other source holds); return (added, removed, total).

    ShrinkRefused, and nothing changed, when the source would lose more than `max_shrink` of
    its entries and `force` is not set: a truncated download must not empty a blocklist.
    """
    wanted = list(dict.fromkeys(values))
    present = {
        value: (entry_id, entry_source)
        for entry_id, value, entry_source in session.execute(
            select(ListEntry.id, ListEntry.value, ListEntry.source).where(ListEntry.list_id == list_def.id)
        )
    }
    owned = {value: entry_id for value, (entry_id, entry_source) in present.items() if entry_source == source}
    wanted_set = set(wanted)
    new = [value for value in wanted if value not in present]
    removed = sorted(value for value in owned if value not in wanted_set)
    total = len(owned) - len(removed) + len(new)
    if owned and not force and total < len(owned) * (1 - max_shrink):
        raise ShrinkRefused(
            f"{source} would shrink from {len(owned)} to {total} entries on {list_def.name}, more than "
            f"{max_shrink:.0%}: refused (a truncated download?); sync with --force to accept it"
        )
    ids = [owned[value] for value in removed]
    for start in range(0, len(ids), _CHUNK):
        session.execute(sa.delete(ListEntry).where(col(ListEntry.id).in_(ids[start:start + _CHUNK])))
    now = utcnow()
    for start in range(0, len(new), _CHUNK * 10):
        session.execute(sa.insert(ListEntry), [
            {"list_id": list_def.id, "value": value, "reason": None, "source": source, "expires_at": None, "created_at": now}
            for value in new[start:start + _CHUNK * 10]
        ])
    if new or removed:
        _list_changed(list_def, added=[(value, None, None) for value in new], removed=removed, session=session)
        changed = {"added_values": sorted(new), "removed_values": removed} if len(new) + len(removed) <= AUDIT_VALUES_LIMIT else {}
        _audit(actor, "list.sync", list_def.name, {
            "list": list_def.name, "source": source, "added": len(new), "removed": len(removed), "total": total,
            **(detail or {}), **changed,
        }, session=session)
    return len(new), len(removed), total
