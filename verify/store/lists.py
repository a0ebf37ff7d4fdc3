"""Block, challenge and allow lists: their definitions, their entries, and every change to them.

Every change to a list's entries is logged in the same transaction (store/list_changes.py),
which bumps the `lists` stamp, so that each worker and instance brings its index up to date
before its next assessment; and is recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.engine.lists import DISPOSABLE_LIST, HOSTING_LIST, SIGNAL_ACTION, ListEntryValue
from verify.errors import Conflict, NotFound
from verify.store.audit import record_audit
from verify.store.list_changes import Added, log_list_changes, log_list_reset
from verify.store.models import ListDef, ListEntry, utcnow
from verify.store.revisions import enqueue_list_entries

# name, kind, action, description: created empty on first start (disposable-domains is seeded).
BUILTIN_LISTS: tuple[tuple[str, str, str, str], ...] = (
    (DISPOSABLE_LIST, "email_domain", "deny", "Disposable (throwaway) inbox providers."),
    ("blocked-domains", "email_domain", "deny", "Email domains refused outright."),
    ("allowed-domains", "email_domain", "allow", "Email domains always let through."),
    ("blocked-emails", "email", "deny", "Mailboxes refused outright (canonical addresses)."),
    ("blocked-ips", "ip", "deny", "IP addresses and networks refused outright."),
    ("challenged-ips", "ip", "challenge", "IP addresses and networks that must pass a challenge."),
    ("allowed-ips", "ip", "allow", "IP addresses and networks always let through."),
    ("blocked-asns", "asn", "deny", "Autonomous systems refused outright."),
    ("challenged-asns", "asn", "challenge", "Autonomous systems that must pass a challenge."),
    ("blocked-countries", "country", "deny", "Countries the service does not serve."),
    ("challenged-countries", "country", "challenge", "Countries whose signups must pass a challenge."),
    ("blocked-phone-prefixes", "phone_prefix", "deny", "Phone number prefixes refused outright."),
    ("blocked-devices", "device", "deny", "Device ids refused outright."),
    (HOSTING_LIST, "ip", SIGNAL_ACTION, "Published cloud and hosting ranges (feeds): scored as ip.hosting where no Anonymous IP database answers."),
)

AUDIT_VALUES_LIMIT = 20  # an audit event names the values of changes up to this size
PACKAGE_SOURCE_PREFIX = "package:"
_CHUNK = 500


def lock_list(list_def: ListDef, *, session: Session) -> None:
    """Hold the list's write lock until the transaction ends, so that changes to one list run one at a time.

    Without it two concurrent replaces each read the entries before the other wrote, and the
    list ended up holding the union of both bodies. PostgreSQL locks the list's row. SQLite
    (pysqlite) opens a transaction only at the first write, so writing the row first takes the
    database's write lock before anything is read, as BEGIN IMMEDIATE would.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ListDef.id).where(ListDef.id == list_def.id).with_for_update())
    else:
        session.execute(sa.update(ListDef).where(ListDef.id == list_def.id).values(updated_at=ListDef.updated_at))


def ensure_builtin_lists(*, session: Session) -> list[ListDef]:
    """Create the built-in lists that do not exist yet; return the new ones."""
    existing = set(session.exec(select(ListDef.name)))
    now = utcnow()
    created = []
    for name, kind, action, description in BUILTIN_LISTS:
        if name not in existing:
            row = ListDef(name=name, kind=kind, action=action, description=description, builtin=True, created_at=now, updated_at=now)
            session.add(row)
            created.append(row)
    session.flush()
    return created


def get_list(name: str, *, session: Session) -> ListDef:
    row = session.exec(select(ListDef).where(ListDef.name == name)).first()
    if row is None:
        raise NotFound(f"no list named {name!r}")
    return row


def insert_entries(
    list_def: ListDef,
    values: Iterable[str],
    *,
    source: str,
    reason: str | None = None,
    expires_at: datetime | None = None,
    revise: bool = True,
    session: Session,
) -> tuple[int, int]:
    """Add normalised values that the list does not hold yet; return (added, existing).

    New values of a deny list queue the re-judging of the stored assessments they match
    (`revise`; not for the seed of a new database, which has nothing to re-judge).
    """
    wanted = list(dict.fromkeys(values))
    present = set()
    for chunk_start in range(0, len(wanted), 500):
        chunk = wanted[chunk_start:chunk_start + 500]
        present.update(session.exec(
            select(ListEntry.value).where(ListEntry.list_id == list_def.id, col(ListEntry.value).in_(chunk))
        ))
    now = utcnow()
    rows = [
        {"list_id": list_def.id, "value": value, "reason": reason, "source": source, "expires_at": expires_at, "created_at": now}
        for value in wanted
        if value not in present
    ]
    if rows:
        session.execute(sa.insert(ListEntry), rows)
        _changed(list_def, added=[(row["value"], reason, expires_at) for row in rows], removed=[], session=session)
        if revise:
            enqueue_list_entries(list_def, [row["value"] for row in rows], session=session)
    return len(rows), len(present)


def load_list_entries(*, session: Session) -> list[ListEntryValue]:
    """Every entry of every list, for the in-memory index."""
    rows = session.execute(
        select(ListDef.name, ListDef.kind, ListDef.action, ListEntry.value, ListEntry.reason, ListEntry.expires_at)
        .join(ListEntry, ListEntry.list_id == ListDef.id)
    )
    return [ListEntryValue(name, kind, action, value, reason, expires_at) for name, kind, action, value, reason, expires_at in rows]


def _changed(list_def: ListDef, *, added: Iterable[Added], removed: Iterable[str], session: Session) -> None:
    """Note a change to the list's entries: workers replay `added` and `removed` into their index.

    A change that cannot be itemised (a whole list dropped) calls `log_list_reset` instead, so
    that workers rebuild: a stamp bumped without a logged row does that too, but silence does not.
    """
    list_def.updated_at = utcnow()
    session.add(list_def)
    log_list_changes(list_def, added=added, removed=removed, session=session)


def _audit_list_change(
    actor: str, action: str, list_def: ListDef, counts: dict[str, int], values: list[str], *, session: Session, **extra: object
) -> None:
    detail: dict = {"list": list_def.name, **counts, **extra}
    if values and len(values) <= AUDIT_VALUES_LIMIT:
        detail["values"] = values
    record_audit(actor, action, target=list_def.name, detail=detail, session=session)


def list_summaries(*, session: Session) -> list[tuple[ListDef, int]]:
    """Every list with its number of entries, by name."""
    counts = (
        select(ListEntry.list_id, sa.func.count().label("entries")).group_by(ListEntry.list_id).subquery()
    )
    rows = session.execute(
        select(ListDef, sa.func.coalesce(counts.c.entries, 0))
        .outerjoin(counts, counts.c.list_id == ListDef.id)
        .order_by(ListDef.name)
    )
    return [(list_def, int(count)) for list_def, count in rows]


def count_entries(list_def: ListDef, *, session: Session) -> int:
    return session.execute(select(sa.func.count()).where(ListEntry.list_id == list_def.id)).scalar_one()


def create_list(name: str, *, kind: str, action: str, description: str, actor: str, session: Session) -> ListDef:
    """A new custom list; Conflict when the name is taken."""
    if session.exec(select(ListDef.id).where(ListDef.name == name)).first() is not None:
        raise Conflict(f"a list named {name!r} exists already")
    now = utcnow()
    row = ListDef(name=name, kind=kind, action=action, description=description, builtin=False, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    record_audit(actor, "list.create", target=name, detail={"kind": kind, "action": action, "description": description}, session=session)
    return row


def list_entries_page(
    list_def: ListDef, *, limit: int, after: str | None = None, q: str | None = None, source: str | None = None, session: Session
) -> list[ListEntry]:
    """Up to `limit` entries ordered by value, those after `after` (keyset paging)."""
    query = select(ListEntry).where(ListEntry.list_id == list_def.id)
    if after is not None:
        query = query.where(ListEntry.value > after)
    if q:
        query = query.where(sa.func.lower(ListEntry.value).contains(q.lower(), autoescape=True))
    if source is not None:
        query = query.where(ListEntry.source == source)
    return list(session.exec(query.order_by(ListEntry.value).limit(limit)))


def add_list_entries(
    list_def: ListDef,
    values: list[str],
    *,
    source: str,
    actor: str,
    reason: str | None = None,
    expires_at: datetime | None = None,
    session: Session,
) -> tuple[int, int]:
    """Add normalised values; return (added, updated). A value already on the list takes the new reason, expiry and source."""
    added, updated, values = _upsert_entries(list_def, [(value, reason, expires_at) for value in values], source=source, session=session)
    if added or updated:
        _audit_list_change(actor, "list.add", list_def, {"added": added, "updated": updated}, values, session=session, source=source)
    return added, updated


def import_list_entries(
    list_def: ListDef,
    entries: list[tuple[str, str | None, datetime | None]],
    *,
    source: str,
    actor: str,
    session: Session,
) -> tuple[int, int]:
    """Add (value, reason, expires_at) rows, as from a CSV file; return (added, updated)."""
    added, updated, values = _upsert_entries(list_def, entries, source=source, session=session)
    if added or updated:
        _audit_list_change(actor, "list.import", list_def, {"added": added, "updated": updated}, values, session=session, source=source)
    return added, updated


def _upsert_entries(
    list_def: ListDef, entries: list[Added], *, source: str, session: Session
) -> tuple[int, int, list[str]]:
    """Insert new values and give present ones the new reason, expiry and source; return (added, updated, values).

    The first row of a value decides its reason and expiry. A present value counts as updated
    when any of the three differs; the change log records it as removed and added again.
    """
    lock_list(list_def, session=session)
    wanted: dict[str, tuple[str | None, datetime | None]] = {}
    for value, reason, expires_at in entries:
        wanted.setdefault(value, (reason, expires_at))
    present = _present_entries(list_def, list(wanted), session=session)
    now = utcnow()
    new = [
        {"list_id": list_def.id, "value": value, "reason": reason, "source": source, "expires_at": expires_at, "created_at": now}
        for value, (reason, expires_at) in wanted.items()
        if value not in present
    ]
    changed = [
        {"entry_id": present[value].id, "value": value, "new_reason": reason, "new_source": source, "new_expires_at": expires_at}
        for value, (reason, expires_at) in wanted.items()
        if value in present and (present[value].reason, present[value].expires_at, present[value].source) != (reason, expires_at, source)
    ]
    if new:
        session.execute(sa.insert(ListEntry), new)
    if changed:
        session.execute(
            sa.update(ListEntry.__table__).where(ListEntry.__table__.c.id == sa.bindparam("entry_id"))
            .values(reason=sa.bindparam("new_reason"), source=sa.bindparam("new_source"), expires_at=sa.bindparam("new_expires_at")),
            [{key: row[key] for key in ("entry_id", "new_reason", "new_source", "new_expires_at")} for row in changed],
        )
    if new or changed:
        added = [(row["value"], row["reason"], row["expires_at"]) for row in new]
        added += [(row["value"], row["new_reason"], row["new_expires_at"]) for row in changed]
        _changed(list_def, added=added, removed=[row["value"] for row in changed], session=session)
    # New values of a deny list re-judge the stored assessments they match, in this transaction.
    enqueue_list_entries(list_def, [row["value"] for row in new], session=session)
    return len(new), len(changed), list(wanted)


def _present_entries(list_def: ListDef, values: list[str], *, session: Session) -> dict[str, ListEntry]:
    present: dict[str, ListEntry] = {}
    for start in range(0, len(values), _CHUNK):
        rows = session.exec(
            select(ListEntry).where(ListEntry.list_id == list_def.id, col(ListEntry.value).in_(values[start:start + _CHUNK]))
        )
        present.update((row.value, row) for row in rows)
    return present


def preview_list_entries(list_def: ListDef, values: list[str], *, session: Session) -> tuple[list[str], list[str]]:
    """What adding normalised values would do, changing nothing: (new values, values already on the list)."""
    unique = list(dict.fromkeys(values))
    present = _present_entries(list_def, unique, session=session)
    return [value for value in unique if value not in present], [value for value in unique if value in present]


def delete_list(list_def: ListDef, *, actor: str, session: Session) -> None:
    """Delete a custom list and its entries; Conflict for a built-in list or one a feed fills."""
    from verify.store.feeds import Feed  # feeds import this module: a top-level import would be circular

    if list_def.builtin:
        raise Conflict(f"{list_def.name!r} is a built-in list; it can be emptied but not deleted")
    feeds = list(session.exec(select(Feed.name).where(Feed.list_id == list_def.id)))
    if feeds:
        raise Conflict(f"the feed(s) {', '.join(sorted(feeds))} fill {list_def.name!r}; remove them first")
    lock_list(list_def, session=session)
    count = count_entries(list_def, session=session)
    log_list_reset(list_def, session=session)  # workers rebuild their index without the list
    session.execute(sa.delete(ListEntry).where(ListEntry.list_id == list_def.id))
    session.delete(list_def)
    record_audit(actor, "list.delete", target=list_def.name, detail={"list": list_def.name, "removed": count}, session=session)


def _delete_ids(ids: list[int], *, session: Session) -> None:
    for start in range(0, len(ids), _CHUNK):
        session.execute(sa.delete(ListEntry).where(col(ListEntry.id).in_(ids[start:start + _CHUNK])))


def replace_list_entries(
    list_def: ListDef, values: list[str], *, source: str, actor: str, reason: str | None = None, session: Session
) -> tuple[int, int, int]:
    """Make the list hold exactly these values; return (added, removed, total).

    Entries that stay keep their provenance, reason and expiry; only new values get `source`.
    """
    lock_list(list_def, session=session)
    wanted = list(dict.fromkeys(values))
    wanted_set = set(wanted)
    present = dict(session.execute(select(ListEntry.value, ListEntry.id).where(ListEntry.list_id == list_def.id)).all())
    removed = [value for value in present if value not in wanted_set]
    _delete_ids([present[value] for value in removed], session=session)
    new = [value for value in wanted if value not in present]
    if new:
        now = utcnow()
        rows = [
            {"list_id": list_def.id, "value": value, "reason": reason, "source": source, "expires_at": None, "created_at": now}
            for value in new
        ]
        session.execute(sa.insert(ListEntry), rows)
        enqueue_list_entries(list_def, new, session=session)
    if new or removed:
        _changed(list_def, added=[(value, reason, None) for value in new], removed=removed, session=session)
        changed = sorted(new) + sorted(removed)
        detail_values = {"added_values": sorted(new), "removed_values": sorted(removed)} if len(changed) <= AUDIT_VALUES_LIMIT else {}
        _audit_list_change(
            actor, "list.replace", list_def, {"added": len(new), "removed": len(removed), "total": len(wanted)}, [],
            session=session, source=source, **detail_values,
        )
    return len(new), len(removed), len(wanted)


def delete_list_value(list_def: ListDef, value: str, *, actor: str, session: Session) -> None:
    """Remove one normalised value; NotFound when the list does not hold it."""
    lock_list(list_def, session=session)
    entry = session.exec(select(ListEntry).where(ListEntry.list_id == list_def.id, ListEntry.value == value)).first()
    if entry is None:
        raise NotFound(f"{value!r} is not on the list {list_def.name!r}")
    session.delete(entry)
    _changed(list_def, added=[], removed=[value], session=session)
    _audit_list_change(actor, "list.remove", list_def, {"removed": 1}, [value], session=session, source=entry.source)


def delete_list_source(list_def: ListDef, source: str, *, actor: str, session: Session) -> int:
    """Remove every entry of one provenance (a poisoned feed or file); NotFound when there is none."""
    lock_list(list_def, session=session)
    values = list(session.exec(
        select(ListEntry.value).where(ListEntry.list_id == list_def.id, ListEntry.source == source)
    ))
    if not values:
        raise NotFound(f"the list {list_def.name!r} holds no entry from {source!r}")
    session.execute(sa.delete(ListEntry).where(ListEntry.list_id == list_def.id, ListEntry.source == source))
    _changed(list_def, added=[], removed=values, session=session)
    _audit_list_change(actor, "list.remove_source", list_def, {"removed": len(values)}, sorted(values), session=session, source=source)
    return len(values)


def stream_values(list_def: ListDef, *, session: Session) -> Iterator[str]:
    """Every value of a list, in order, streamed."""
    query = select(ListEntry.value).where(ListEntry.list_id == list_def.id).order_by(ListEntry.value)
    yield from session.execute(query.execution_options(yield_per=2000)).scalars()


def stream_entries(list_def: ListDef, *, session: Session) -> Iterator[tuple[str, str | None, datetime | None, str]]:
    """Every entry of a list as (value, reason, expires_at, source), in order of value, streamed."""
    query = (
        select(ListEntry.value, ListEntry.reason, ListEntry.expires_at, ListEntry.source)
        .where(ListEntry.list_id == list_def.id)
        .order_by(ListEntry.value)
    )
    for row in session.execute(query.execution_options(yield_per=2000)):
        yield tuple(row)


def refresh_package_entries(
    list_def: ListDef, values: Iterable[str], *, source: str, actor: str, session: Session
) -> tuple[int, int]:
    """Make the entries that came from a package hold exactly `values`; return (added, removed).

    Entries an admin added by hand are kept whatever the package says; package entries that
    the new version still has are relabelled with its `source`.
    """
    lock_list(list_def, session=session)
    wanted = set(values)
    present = {
        value: (entry_id, entry_source)
        for entry_id, value, entry_source in session.execute(
            select(ListEntry.id, ListEntry.value, ListEntry.source).where(ListEntry.list_id == list_def.id)
        )
    }
    from_package = {value: entry_id for value, (entry_id, entry_source) in present.items() if entry_source.startswith(PACKAGE_SOURCE_PREFIX)}
    removed = sorted(value for value in from_package if value not in wanted)
    _delete_ids([from_package[value] for value in removed], session=session)
    relabel = [entry_id for value, entry_id in from_package.items() if value in wanted and present[value][1] != source]
    for start in range(0, len(relabel), _CHUNK):
        session.execute(sa.update(ListEntry).where(col(ListEntry.id).in_(relabel[start:start + _CHUNK])).values(source=source))
    new = sorted(value for value in wanted if value not in present)
    if new:
        now = utcnow()
        session.execute(sa.insert(ListEntry), [
            {"list_id": list_def.id, "value": value, "reason": None, "source": source, "expires_at": None, "created_at": now}
            for value in new
        ])
    if new or removed or relabel:
        _changed(list_def, added=[(value, None, None) for value in new], removed=removed, session=session)
        _audit_list_change(
            actor, "list.refresh", list_def, {"added": len(new), "removed": len(removed)}, [],
            session=session, source=source,
        )
    return len(new), len(removed)


def source_counts(list_def: ListDef, *, session: Session) -> list[tuple[str, int]]:
    """The provenance of a list's entries: how many came from each source, largest first."""
    rows = session.execute(
        select(ListEntry.source, sa.func.count())
        .where(ListEntry.list_id == list_def.id)
        .group_by(ListEntry.source)
        .order_by(sa.func.count().desc(), ListEntry.source)
    )
    return [(source, int(count)) for source, count in rows]
