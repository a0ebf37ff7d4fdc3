"""Every query the service runs, in one place. Functions take the session as a keyword."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.engine.lists import DISPOSABLE_LIST, ListEntryValue
from verify.errors import Conflict, NotFound
from verify.store.models import ApiKey, Assessment, AuditEvent, Feedback, ListDef, ListEntry, PolicyVersion, Stamp

LISTS_STAMP = "lists"
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
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- stamps: how workers learn that a cached thing changed --------------------------------

def read_stamps(*, session: Session) -> dict[str, int]:
    return {stamp.name: stamp.value for stamp in session.exec(select(Stamp))}


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
        record_audit(actor, "key.revoke", target=name, session=session)
    return key


def find_api_key(secret: str, *, session: Session) -> ApiKey | None:
    """The live key whose secret this is; the hash is compared in constant time."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != "vk":
        return None
    key = session.exec(select(ApiKey).where(ApiKey.lookup == parts[1])).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _hash_secret(secret)):
        return None
    return key


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
    session.add(row)
    session.flush()
    return row


def get_assessment(assessment_id: str, *, session: Session) -> Assessment:
    row = session.exec(select(Assessment).where(Assessment.id == assessment_id)).first()
    if row is None:
        raise NotFound(f"no assessment with id {assessment_id!r}")
    return row


def find_by_idempotency_key(api_key_id: int, key: str, *, session: Session) -> Assessment | None:
    return session.exec(
        select(Assessment).where(Assessment.api_key_id == api_key_id, Assessment.idempotency_key == key)
    ).first()


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
