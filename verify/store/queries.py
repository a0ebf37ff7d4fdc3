"""Every query the service runs, in one place. Functions take the session as a keyword."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.engine.lists import DISPOSABLE_LIST, HOSTING_LIST, SIGNAL_ACTION, ListEntryValue
from verify.errors import Conflict, NotFound
from verify.store.models import ApiKey, Assessment, AuditEvent, Feedback, ListDef, ListEntry, PolicyVersion, Stamp, UTCDateTime

LISTS_STAMP = "lists"
KEYS_STAMP = "keys"
POLICY_STAMP = "policy"

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


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- stamps: how workers learn that a cached thing changed --------------------------------

def read_stamps(*, session: Session) -> dict[str, int]:
    return {name: value for name, value in session.execute(sa.select(Stamp.name, Stamp.value))}


def bump_stamp(name: str, *, session: Session) -> None:
    updated = session.execute(sa.update(Stamp).where(Stamp.name == name).values(value=Stamp.value + 1))
    if updated.rowcount == 0:
        session.add(Stamp(name=name, value=1))
        session.flush()


# -- audit -----------------------------------------------------------------------------

def record_audit(actor: str, action: str, *, target: str = "", detail: dict | None = None, session: Session) -> None:
    session.add(AuditEvent(at=utcnow(), actor=actor, action=action, target=target, detail=detail or {}))


# -- API keys --------------------------------------------------------------------------

def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(name: str, scopes: Iterable[str], *, session: Session, actor: str = "cli") -> str:
    """Store a new key and return its secret, which is shown once and never stored."""
    if session.exec(select(ApiKey).where(ApiKey.name == name)).first():
        raise Conflict(f"an API key named {name!r} exists already")
    lookup = secrets.token_hex(8)
    secret = f"vk_{lookup}_{secrets.token_urlsafe(32)}"
    scope_list = sorted(set(scopes))
    session.add(ApiKey(name=name, lookup=lookup, secret_hash=_hash_secret(secret), scopes=scope_list, created_at=utcnow()))
    bump_stamp(KEYS_STAMP, session=session)
    record_audit(actor, "key.create", target=name, detail={"scopes": scope_list}, session=session)
    return secret


def list_api_keys(*, session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(name: str, *, session: Session, actor: str = "cli") -> ApiKey:
    key = session.exec(select(ApiKey).where(ApiKey.name == name)).first()
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        bump_stamp(KEYS_STAMP, session=session)
        record_audit(actor, "key.revoke", target=name, session=session)
    return key


def secret_lookup(secret: str) -> str | None:
    """The public lookup part of a secret (`vk_<lookup>_<random>`), or None for another shape."""
    parts = secret.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "vk" else None


def secret_matches(key: ApiKey, secret: str) -> bool:
    """The key is live and this is its secret; the hash is compared in constant time."""
    return key.revoked_at is None and hmac.compare_digest(key.secret_hash, _hash_secret(secret))


def live_api_keys(*, session: Session) -> dict[str, ApiKey]:
    """Every unrevoked key by its lookup part, for the per-process cache."""
    keys = session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None)))
    return {key.lookup: key for key in keys}


# -- policy ----------------------------------------------------------------------------

def current_policy(*, session: Session) -> PolicyVersion | None:
    return session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc()).limit(1)).first()


def add_policy_version(body: dict, *, actor: str, session: Session) -> PolicyVersion:
    latest = current_policy(session=session)
    row = PolicyVersion(version=(latest.version + 1) if latest else 1, body=body, created_at=utcnow(), created_by=actor)
    session.add(row)
    bump_stamp(POLICY_STAMP, session=session)
    record_audit(actor, "policy.update", target=f"version {row.version}", detail=body, session=session)
    session.flush()
    return row


# -- lists -----------------------------------------------------------------------------

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
    session: Session,
) -> tuple[int, int]:
    """Add normalised values that the list does not hold yet; return (added, existing)."""
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
        list_def.updated_at = now
        session.add(list_def)
        bump_stamp(LISTS_STAMP, session=session)
    return len(rows), len(present)


def load_list_entries(*, session: Session) -> list[ListEntryValue]:
    """Every entry of every list, for the in-memory index."""
    rows = session.execute(
        select(ListDef.name, ListDef.kind, ListDef.action, ListEntry.value, ListEntry.reason, ListEntry.expires_at)
        .join(ListEntry, ListEntry.list_id == ListDef.id)
    )
    return [ListEntryValue(name, kind, action, value, reason, expires_at) for name, kind, action, value, reason, expires_at in rows]


# -- assessments -----------------------------------------------------------------------

def save_assessment(row: Assessment, *, session: Session) -> Assessment:
    """Insert with one Core statement: the ORM's unit of work costs more than the insert itself."""
    values = {name: getattr(row, name) for name in Assessment.model_fields if name != "seq"}
    values["metadata"] = values.pop("metadata_")
    session.execute(sa.insert(Assessment.__table__), [values])
    return row


def get_assessment(assessment_id: str, *, session: Session) -> Assessment:
    if "\x00" in assessment_id:  # no id holds one, and PostgreSQL refuses it in a query
        raise NotFound(f"no assessment with id {assessment_id!r}")
    row = session.exec(select(Assessment).where(Assessment.id == assessment_id)).first()
    if row is None:
        raise NotFound(f"no assessment with id {assessment_id!r}")
    return row


def find_by_idempotency_key(api_key_id: int, key: str, *, session: Session) -> Assessment | None:
    return session.exec(
        select(Assessment).where(Assessment.api_key_id == api_key_id, Assessment.idempotency_key == key)
    ).first()


# -- list administration ---------------------------------------------------------------
# Every change to a list bumps the `lists` stamp in the same transaction, so that each worker
# and instance rebuilds its index before its next assessment, and is recorded in the audit trail.

AUDIT_VALUES_LIMIT = 20  # an audit event names the values of changes up to this size
PACKAGE_SOURCE_PREFIX = "package:"
_CHUNK = 500


def _changed(list_def: ListDef, *, session: Session) -> None:
    list_def.updated_at = utcnow()
    session.add(list_def)
    bump_stamp(LISTS_STAMP, session=session)


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
    """Add normalised values; return (added, existing). Values already on the list are left as they are."""
    added, existing = insert_entries(list_def, values, source=source, reason=reason, expires_at=expires_at, session=session)
    if added:
        _audit_list_change(
            actor, "list.add", list_def, {"added": added, "existing": existing}, list(dict.fromkeys(values)),
            session=session, source=source,
        )
    return added, existing


def import_list_entries(
    list_def: ListDef,
    entries: list[tuple[str, str | None, datetime | None]],
    *,
    source: str,
    actor: str,
    session: Session,
) -> tuple[int, int]:
    """Add (value, reason, expires_at) rows, as from a CSV file; return (added, existing)."""
    groups: dict[tuple[str | None, datetime | None], list[str]] = {}
    seen: set[str] = set()
    for value, reason, expires_at in entries:
        if value not in seen:  # the first row of a value decides its reason and expiry
            seen.add(value)
            groups.setdefault((reason, expires_at), []).append(value)
    added = existing = 0
    for (reason, expires_at), values in groups.items():
        group_added, group_existing = insert_entries(
            list_def, values, source=source, reason=reason, expires_at=expires_at, session=session
        )
        added, existing = added + group_added, existing + group_existing
    if added:
        values = [value for value, _, _ in entries]
        _audit_list_change(
            actor, "list.import", list_def, {"added": added, "existing": existing}, list(dict.fromkeys(values)),
            session=session, source=source,
        )
    return added, existing


def _delete_ids(ids: list[int], *, session: Session) -> None:
    for start in range(0, len(ids), _CHUNK):
        session.execute(sa.delete(ListEntry).where(col(ListEntry.id).in_(ids[start:start + _CHUNK])))


def replace_list_entries(
    list_def: ListDef, values: list[str], *, source: str, actor: str, reason: str | None = None, session: Session
) -> tuple[int, int, int]:
    """Make the list hold exactly these values; return (added, removed, total).

    Entries that stay keep their provenance, reason and expiry; only new values get `source`.
    """
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
    if new or removed:
        _changed(list_def, session=session)
        changed = sorted(new) + sorted(removed)
        detail_values = {"added_values": sorted(new), "removed_values": sorted(removed)} if len(changed) <= AUDIT_VALUES_LIMIT else {}
        _audit_list_change(
            actor, "list.replace", list_def, {"added": len(new), "removed": len(removed), "total": len(wanted)}, [],
            session=session, source=source, **detail_values,
        )
    return len(new), len(removed), len(wanted)


def delete_list_value(list_def: ListDef, value: str, *, actor: str, session: Session) -> None:
    """Remove one normalised value; NotFound when the list does not hold it."""
    entry = session.exec(select(ListEntry).where(ListEntry.list_id == list_def.id, ListEntry.value == value)).first()
    if entry is None:
        raise NotFound(f"{value!r} is not on the list {list_def.name!r}")
    session.delete(entry)
    _changed(list_def, session=session)
    _audit_list_change(actor, "list.remove", list_def, {"removed": 1}, [value], session=session, source=entry.source)


def delete_list_source(list_def: ListDef, source: str, *, actor: str, session: Session) -> int:
    """Remove every entry of one provenance (a poisoned feed or file); NotFound when there is none."""
    values = list(session.exec(
        select(ListEntry.value).where(ListEntry.list_id == list_def.id, ListEntry.source == source)
    ))
    if not values:
        raise NotFound(f"the list {list_def.name!r} holds no entry from {source!r}")
    session.execute(sa.delete(ListEntry).where(ListEntry.list_id == list_def.id, ListEntry.source == source))
    _changed(list_def, session=session)
    _audit_list_change(actor, "list.remove_source", list_def, {"removed": len(values)}, sorted(values), session=session, source=source)
    return len(values)


def list_values(list_def: ListDef, *, session: Session) -> Iterator[str]:
    """Every value of a list, in order, streamed."""
    query = select(ListEntry.value).where(ListEntry.list_id == list_def.id).order_by(ListEntry.value)
    yield from session.execute(query.execution_options(yield_per=2000)).scalars()


def refresh_package_entries(
    list_def: ListDef, values: Iterable[str], *, source: str, actor: str, session: Session
) -> tuple[int, int]:
    """Make the entries that came from a package hold exactly `values`; return (added, removed).

    Entries an admin added by hand are kept whatever the package says; package entries that
    the new version still has are relabelled with its `source`.
    """
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
        _changed(list_def, session=session)
        _audit_list_change(
            actor, "list.refresh", list_def, {"added": len(new), "removed": len(removed)}, [],
            session=session, source=source,
        )
    return len(new), len(removed)


# -- audit trail -------------------------------------------------------------------------

def audit_page(*, limit: int, before: int | None = None, session: Session) -> list[AuditEvent]:
    """Up to `limit` audit events, newest first, those older than the event id `before`."""
    query = select(AuditEvent)
    if before is not None:
        query = query.where(col(AuditEvent.id) < before)
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))


# -- policy simulation -------------------------------------------------------------------

def recent_judgements(last: int, *, session: Session) -> Iterator[sa.Row]:
    """The stored verdicts and signals of the last `last` assessments, newest first, streamed.

    Only the columns a re-judgement needs are read, in batches, so 10,000 rows stay cheap.
    """
    query = (
        select(Assessment.id, Assessment.email, Assessment.verdict, Assessment.score, Assessment.signals)
        .order_by(col(Assessment.seq).desc())
        .limit(last)
        .execution_options(yield_per=1000)
    )
    yield from session.execute(query)

# -- retention and erasure -------------------------------------------------------------

def assessment_ids_before(cutoff: datetime, *, limit: int, session: Session) -> list[str]:
    """Ids of up to `limit` assessments that occurred before `cutoff`, oldest first."""
    return list(session.exec(
        select(Assessment.id).where(Assessment.occurred_at < cutoff).order_by(col(Assessment.occurred_at)).limit(limit)
    ))


def assessment_ids_of_person(
    *,
    email_canonical: str | None = None,
    email: str | None = None,
    phone_e164: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    session: Session,
) -> list[str]:
    """Ids of the assessments that name this person by any of the given (normalised) values."""
    matches = []
    if email_canonical is not None:
        matches.append(Assessment.email_canonical == email_canonical)
    if email is not None:
        matches.append(Assessment.email == email)
    if phone_e164 is not None:
        matches += [Assessment.phone_e164 == phone_e164, Assessment.phone == phone_e164]
    if phone is not None:
        matches.append(Assessment.phone == phone)
    if external_id is not None:
        matches.append(Assessment.external_id == external_id)
    if not matches:
        return []
    return list(session.exec(select(Assessment.id).where(sa.or_(*matches))))


def delete_assessments(ids: list[str], *, session: Session) -> tuple[int, int]:
    """Delete these assessments and their feedback; return (assessments, feedback) deleted."""
    assessments = feedback = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        feedback += session.execute(sa.delete(Feedback).where(col(Feedback.assessment_id).in_(chunk))).rowcount
        assessments += session.execute(sa.delete(Assessment).where(col(Assessment.id).in_(chunk))).rowcount
    return assessments, feedback



# -- history: capped counts of earlier signups per key and window -------------------------

ASSESSMENT = Assessment.__table__.c


def _earlier(conditions: list, *, start: Any, end: Any, cap: int, distinct: str | None = None):
    """How many rows (or distinct values of a column) match, over a LIMIT-capped subquery.

    A hot key costs at most `cap` index entries however large the table grows.
    """
    picked = ASSESSMENT[distinct].label("value") if distinct else sa.literal(1).label("value")
    capped = (
        sa.select(picked)
        .select_from(Assessment.__table__)
        .where(*conditions, ASSESSMENT.occurred_at >= start, ASSESSMENT.occurred_at < end)
        .limit(cap)
        .subquery()
    )
    counted = sa.func.count(sa.distinct(capped.c.value)) if distinct else sa.func.count()
    return sa.select(counted).select_from(capped).scalar_subquery()


# A phone or device is counted by the other mailboxes it signed up, a block by its other numbers.
DISTINCT_COUNTS = {"phone": "email_canonical", "device": "email_canonical", "phone_block": "phone_e164"}


def _param(name: str):
    return sa.bindparam(name, type_=sa.String() if name != "asn" else sa.BigInteger())


# key -> (conditions with bind parameters, the parameters it needs from the keys)
HISTORY_KEYS: dict[str, tuple[list, tuple[str, ...]]] = {
    "email_canonical": ([ASSESSMENT.email_canonical == _param("email_canonical")], ("email_canonical",)),
    # Case is how people type, not how farms alias: only another spelling counts as a variant.
    "email_variants": (
        [ASSESSMENT.email_canonical == _param("email_canonical"), sa.func.lower(ASSESSMENT.email) != sa.func.lower(_param("email"))],
        ("email_canonical", "email"),
    ),
    "email_domain": ([ASSESSMENT.email_domain == _param("email_domain")], ("email_domain",)),
    "local_template": (
        [ASSESSMENT.local_template == _param("local_template"), ASSESSMENT.email_domain == _param("email_domain")],
        ("local_template", "email_domain"),
    ),
    "phone": (
        [ASSESSMENT.phone_e164 == _param("phone_e164"), sa.func.coalesce(ASSESSMENT.email_canonical, "") != _param("other_mailbox")],
        ("phone_e164",),
    ),
    "phone_block": (
        [ASSESSMENT.phone_block == _param("phone_block"), sa.func.coalesce(ASSESSMENT.phone_e164, "") != _param("other_number")],
        ("phone_block",),
    ),
    "ip": ([ASSESSMENT.ip == _param("ip")], ("ip",)),
    "ip_network": ([ASSESSMENT.ip_network == _param("ip_network")], ("ip_network",)),
    "asn": ([ASSESSMENT.asn == _param("asn")], ("asn",)),
    "device": (
        [ASSESSMENT.device_id == _param("device_id"), sa.func.coalesce(ASSESSMENT.email_canonical, "") != _param("other_mailbox")],
        ("device_id",),
    ),
}
WINDOW_NAMES = ("short", "medium", "long")


@functools.lru_cache(maxsize=256)
def _history_statement(names: tuple[str, ...], cap: int) -> sa.Select:
    """One SELECT of capped counts for these keys; built once per shape, so the compiled form is reused."""
    columns = []
    for name in names:
        conditions, _ = HISTORY_KEYS[name]
        windows = ("long",) if name == "email_variants" else WINDOW_NAMES
        for window in windows:
            start = sa.bindparam(f"start_{window}", type_=UTCDateTime())
            count = _earlier(conditions, start=start, end=sa.bindparam("end", type_=UTCDateTime()), cap=cap, distinct=DISTINCT_COUNTS.get(name))
            columns.append(count.label(f"{name}__{window}"))
    return sa.select(*columns)


def history_counts(
    keys: Mapping[str, Any],
    *,
    email: str,
    windows: Mapping[str, int],
    end: datetime,
    cap: int,
    session: Session,
) -> dict[str, dict[str, int]]:
    """Earlier signups (occurred_at before `end`) per key and window, each at most `cap`, in one round trip.

    Only the keys this signup has are counted; `keys` uses the Assessment column names.
    """
    names = tuple(name for name, (_, needs) in HISTORY_KEYS.items() if all(keys.get(need) is not None for need in needs if need != "email"))
    if not names:
        return {}
    params: dict[str, Any] = {column: keys.get(column) for column in ("email_canonical", "email_domain", "local_template", "phone_e164", "phone_block", "ip", "ip_network", "asn", "device_id")}
    params.update(
        email=email,
        other_mailbox=keys.get("email_canonical") or "",
        other_number=keys.get("phone_e164") or "",
        end=end,
        **{f"start_{window}": end - timedelta(seconds=windows[window]) for window in WINDOW_NAMES},
    )
    row = session.execute(_history_statement(names, cap), params).one()
    counts: dict[str, dict[str, int]] = {}
    for label, value in row._mapping.items():
        name, window = label.rsplit("__", 1)
        counts.setdefault(name, {})[window] = int(value)
    return counts


def first_seen(column: str, value: Any, *, before: datetime, session: Session) -> datetime | None:
    """When a key first appeared in the history before `before` (one index seek)."""
    return session.execute(
        sa.select(ASSESSMENT.occurred_at)
        .where(ASSESSMENT[column] == value, ASSESSMENT.occurred_at < before)
        .order_by(ASSESSMENT.occurred_at)
        .limit(1)
    ).scalar()


@functools.lru_cache(maxsize=64)
def _reputation_statement(columns: tuple[str, ...], sample: int) -> sa.Select:
    """The most recent `sample` earlier signups of each key, in one UNION ALL, with their feedback."""
    before = sa.bindparam("before", type_=UTCDateTime())
    recents = [
        sa.select(
            sa.select(sa.literal(column).label("key"), ASSESSMENT.id, ASSESSMENT.occurred_at, ASSESSMENT.verdict)
            .where(ASSESSMENT[column] == _param(column), ASSESSMENT.occurred_at < before)
            .order_by(ASSESSMENT.occurred_at.desc())
            .limit(sample)
            .subquery()
        )
        for column in columns
    ]
    recent = sa.union_all(*recents).subquery()
    feedback = Feedback.__table__.c
    return (
        sa.select(recent.c.key, recent.c.id, recent.c.occurred_at, recent.c.verdict, feedback.label, feedback.created_at, feedback.id)
        .select_from(recent)
        .outerjoin(Feedback.__table__, sa.and_(feedback.assessment_id == recent.c.id, feedback.created_at <= before))
    )


def reputation_evidence(
    values: Mapping[str, Any], *, before: datetime, sample: int, session: Session
) -> dict[str, list[tuple[datetime, str, str | None]]]:
    """Per key column: (occurred_at, verdict, latest feedback label) of its most recent `sample` earlier signups.

    One round trip for all keys. Feedback counts only if it was given by `before`: a replay
    then sees what live traffic saw.
    """
    columns = tuple(sorted(values))
    if not columns:
        return {}
    rows = session.execute(_reputation_statement(columns, sample), {**values, "before": before})
    held: dict[tuple[str, str], tuple[datetime, str, str | None, tuple]] = {}
    for column, assessment_id, occurred_at, verdict, label, given_at, feedback_id in rows:
        order = (given_at, feedback_id) if label else (None, None)
        earlier = held.get((column, assessment_id))
        if earlier is None or (label and (earlier[3][0] is None or order > earlier[3])):
            held[(column, assessment_id)] = (_utc(occurred_at), verdict, label, order)
    evidence: dict[str, list[tuple[datetime, str, str | None]]] = {column: [] for column in columns}
    for (column, _), (occurred_at, verdict, label, _) in held.items():
        evidence[column].append((occurred_at, verdict, label))
    return evidence


def _utc(moment: datetime) -> datetime:
    """A UNION's column loses its type on SQLite: read the stored UTC text back as aware."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- feedback ----------------------------------------------------------------------------

def add_feedback(
    assessment: Assessment, *, label: str, source: str, note: str | None, actor: str, session: Session
) -> Feedback:
    row = Feedback(assessment_id=assessment.id, label=label, source=source, note=note, actor=actor, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def feedback_for(assessment_ids: Iterable[str], *, session: Session) -> dict[str, list[Feedback]]:
    """Feedback per assessment, oldest first, for a page of assessments."""
    ids = list(dict.fromkeys(assessment_ids))
    found: dict[str, list[Feedback]] = {assessment_id: [] for assessment_id in ids}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start:chunk_start + 500]
        for row in session.exec(
            select(Feedback).where(col(Feedback.assessment_id).in_(chunk)).order_by(Feedback.created_at, Feedback.id)
        ):
            found[row.assessment_id].append(row)
    return found


# -- search and clusters -----------------------------------------------------------------

@dataclass(frozen=True)
class AssessmentFilter:
    """Already-normalised search filters; None means any."""

    verdict: str | None = None
    email_canonical: str | None = None
    email_domain: str | None = None
    ips: tuple[str, ...] | None = None
    ip_networks: tuple[str, ...] | None = None
    phone_e164: str | None = None
    device_id: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_assessments(
    filters: AssessmentFilter, *, limit: int, after: tuple[datetime, int] | None, session: Session
) -> tuple[list[Assessment], tuple[datetime, int] | None]:
    """A page of assessments, newest first, and the position to continue after (None at the end)."""
    query = select(Assessment)
    equal = {
        "verdict": filters.verdict,
        "email_canonical": filters.email_canonical,
        "email_domain": filters.email_domain,
        "phone_e164": filters.phone_e164,
        "device_id": filters.device_id,
    }
    for name, value in equal.items():
        if value is not None:
            query = query.where(ASSESSMENT[name] == value)
    if filters.ips is not None:
        query = query.where(col(Assessment.ip).in_(filters.ips))
    if filters.ip_networks is not None:
        query = query.where(col(Assessment.ip_network).in_(filters.ip_networks))
    if filters.reason is not None:
        # Reasons are stored as a JSON list; a quoted code cannot occur inside a JSON-escaped detail.
        query = query.where(sa.cast(ASSESSMENT.reasons, sa.Text).like(f'%"{_like_literal(filters.reason)}"%', escape="\\"))
    if filters.since is not None:
        query = query.where(Assessment.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(Assessment.occurred_at < filters.until)
    if after is not None:
        at, seq = after
        query = query.where(sa.or_(Assessment.occurred_at < at, sa.and_(Assessment.occurred_at == at, col(Assessment.seq) < seq)))
    query = query.order_by(col(Assessment.occurred_at).desc(), col(Assessment.seq).desc()).limit(limit + 1)
    rows = list(session.exec(query))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (last.occurred_at, last.seq)


# shared -> column of the Related schema's groups, in the order they are shown.
RELATED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email_canonical", "email_canonical"),
    ("phone", "phone_e164"),
    ("device_id", "device_id"),
    ("ip", "ip"),
    ("ip_network", "ip_network"),
    ("email_domain", "email_domain"),
)


@dataclass(frozen=True)
class RelatedGroup:
    shared: str
    value: str
    count: int
    items: list[Any]


def related_assessments(
    row: Assessment, *, limit: int, count_cap: int, skip: Iterable[str] = (), session: Session
) -> list[RelatedGroup]:
    """The other assessments sharing each of the row's keys: a capped count and the newest `limit`."""
    groups = []
    skipped = set(skip)
    for shared, column in RELATED_COLUMNS:
        value = getattr(row, column)
        if value is None or shared in skipped:
            continue
        same = [ASSESSMENT[column] == value, ASSESSMENT.id != row.id]
        capped = sa.select(sa.literal(1)).select_from(Assessment.__table__).where(*same).limit(count_cap).subquery()
        total = session.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        if total == 0:
            continue
        items = session.execute(
            sa.select(ASSESSMENT.id, ASSESSMENT.email, ASSESSMENT.verdict, ASSESSMENT.occurred_at)
            .where(*same)
            .order_by(ASSESSMENT.occurred_at.desc(), ASSESSMENT.seq.desc())
            .limit(limit)
        ).all()
        groups.append(RelatedGroup(shared=shared, value=str(value), count=total, items=list(items)))
    return groups
