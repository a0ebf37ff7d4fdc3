"""The audit trail: who changed lists, policy, keys or stored data, and when."""

from __future__ import annotations

from sqlmodel import Session, col, select

from verify.store.models import AuditEvent, utcnow


def record_audit(actor: str, action: str, *, target: str = "", detail: dict | None = None, session: Session) -> None:
    session.add(AuditEvent(at=utcnow(), actor=actor, action=action, target=target, detail=detail or {}))


def audit_page(*, limit: int, before: int | None = None, session: Session) -> list[AuditEvent]:
    """Up to `limit` audit events, newest first, those older than the event id `before`."""
    query = select(AuditEvent)
    if before is not None:
        query = query.where(col(AuditEvent.id) < before)
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))
