"""The audit trail: who changed lists, policy, keys or stored data, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.store.models import AuditEvent, utcnow


def record_audit(actor: str, action: str, *, target: str = "", detail: dict | None = None, session: Session) -> None:
    session.add(AuditEvent(at=utcnow(), actor=actor, action=action, target=target, detail=detail or {}))


@dataclass(frozen=True)
class AuditFilter:
    """Audit search filters; None means any. `target` matches a part of the target."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_page(
    *, limit: int, before: int | None = None, filters: AuditFilter = AuditFilter(), session: Session
) -> list[AuditEvent]:
    """Up to `limit` audit events, newest first, those older than the event id `before`."""
    query = select(AuditEvent)
    if before is not None:
        query = query.where(col(AuditEvent.id) < before)
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action is not None:
        # `list` finds list.add, list.remove...; `list.add` finds only itself.
        query = query.where(sa.or_(AuditEvent.action == filters.action, col(AuditEvent.action).startswith(f"{filters.action}.", autoescape=True)))
    if filters.target is not None:
        query = query.where(sa.func.lower(AuditEvent.target).contains(filters.target.lower(), autoescape=True))
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))
