"""API keys: created, listed, revoked, and matched against a presented secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlmodel import Session, col, select

from verify.errors import Conflict, InvalidInput, NotFound
from verify.store import lengths
from verify.store.audit import record_audit
from verify.store.models import ApiKey, utcnow
from verify.store.stamps import KEYS_STAMP, bump_stamp


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(name: str, scopes: Iterable[str], *, session: Session, actor: str = "cli") -> str:
    """Store a new key and return its secret, which is shown once and never stored."""
    if not 0 < len(name) <= lengths.KEY_NAME or any(not char.isprintable() for char in name):
        problem = f"must be 1 to {lengths.KEY_NAME} characters, none of them control characters"
        raise InvalidInput(f"an API key name {problem}", errors=[{"field": "name", "message": problem}])
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
