"""Webhooks: the endpoints admins register, and one delivery per endpoint per event.

An event is written as deliveries in the caller's transaction (`enqueue_event`): a revision
and the delivery that announces it commit together or not at all, so a process that dies
between the two loses nothing. Workers then claim due deliveries, send them outside any
transaction, and record the outcome (verify/delivery.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.errors import Conflict, NotFound
from verify.standard_webhooks import new_secret
from verify.store.audit import record_audit
from verify.store.models import WebhookDelivery, WebhookEndpoint, utcnow
from verify.store.stamps import WEBHOOKS_STAMP, bump_stamp

REVISION_CREATED = "revision.created"
ASSESSMENT_CREATED = "assessment.created"
EVENT_TYPES = (REVISION_CREATED, ASSESSMENT_CREATED)
# `assessment.created` tells of the verdicts the backend acts on later (a challenge to
# follow up, a deny to review); an allow needs nothing from it.
ANNOUNCED_VERDICTS = ("challenge", "deny")
# The field of each event's data that names the assessment it is about.
SUBJECT = {REVISION_CREATED: "assessment_id", ASSESSMENT_CREATED: "id"}
# A failing endpoint is retried for at least this long after the event (or a redeliver).
RETRY_WINDOW = timedelta(hours=24)

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED)

DELIVERY = WebhookDelivery.__table__.c


# -- endpoints ---------------------------------------------------------------------------

def create_endpoint(
    *, url: str, events: list[str], description: str, enabled: bool, actor: str, session: Session
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret (the caller shows it once)."""
    now = utcnow()
    row = WebhookEndpoint(
        id=str(uuid.uuid4()), url=url, events=list(events), description=description, enabled=enabled,
        secret=new_secret(), created_at=now, updated_at=now, created_by=actor,
    )
    session.add(row)
    session.flush()
    bump_stamp(WEBHOOKS_STAMP, session=session)  # each worker's copy of the subscriptions is renewed
    record_audit(actor, "webhook.create", target=row.id, detail=_audited(row), session=session)
    return row


def list_endpoints(*, session: Session) -> list[WebhookEndpoint]:
    return list(session.exec(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def get_endpoint(endpoint_id: str, *, session: Session) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id) if "\x00" not in endpoint_id else None
    if row is None:
        raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
    return row


def update_endpoint(endpoint_id: str, changes: dict[str, Any], *, actor: str, session: Session) -> WebhookEndpoint:
    """Change the url, events, description or enabled flag; the secret stays."""
    row = get_endpoint(endpoint_id, session=session)
    for name in ("url", "events", "description", "enabled"):
        if name in changes:
            setattr(row, name, list(changes[name]) if name == "events" else changes[name])
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    bump_stamp(WEBHOOKS_STAMP, session=session)
    record_audit(actor, "webhook.update", target=row.id, detail={"changed": sorted(changes), **_audited(row)}, session=session)
    return row


def delete_endpoint(endpoint_id: str, *, actor: str, session: Session) -> None:
    """Remove the endpoint and its delivery log; deliveries not yet sent are dropped."""
    row = get_endpoint(endpoint_id, session=session)
    detail = _audited(row)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    session.delete(row)
    bump_stamp(WEBHOOKS_STAMP, session=session)
    record_audit(actor, "webhook.delete", target=endpoint_id, detail=detail, session=session)


def _audited(row: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret: the audit trail is read by every admin.
    return {"url": row.url, "events": row.events, "enabled": row.enabled}


# -- events ------------------------------------------------------------------------------

def event_body(event_type: str, payload: dict[str, Any], *, at: datetime) -> str:
    """The body every endpoint receives: `{"type", "timestamp", "data"}`, serialised once so
    that each attempt signs and sends the same bytes."""
    stamp = at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": stamp, "data": payload}, ensure_ascii=False, separators=(",", ":"))


def enqueue_event(session: Session, event_type: str, payload: dict[str, Any], *, now: datetime | None = None) -> int:
    """Write one delivery of this event for every enabled endpoint subscribed to it, in the
    caller's transaction (uncommitted); return how many."""
    return enqueue_events(session, event_type, [payload], now=now)


def enqueue_events(
    session: Session, event_type: str, payloads: Iterable[dict[str, Any]], *, now: datetime | None = None
) -> int:
    """enqueue_event for many events of one type, with one look at the endpoints."""
    rows = delivery_rows(subscriptions(session=session), event_type, payloads, now=now or utcnow())
    if rows:
        session.execute(sa.insert(WebhookDelivery.__table__), rows)
    return len(rows)


def subscriptions(*, session: Session) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(endpoint id, event types) of every enabled endpoint: what each worker keeps a copy of."""
    rows = session.execute(sa.select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.enabled == sa.true()))
    return tuple((endpoint_id, tuple(events)) for endpoint_id, events in rows)


def delivery_rows(
    endpoints: Iterable[tuple[str, Iterable[str]]], event_type: str, payloads: Iterable[dict[str, Any]], *, now: datetime
) -> list[dict[str, Any]]:
    """One pending delivery per subscribed endpoint per event (values of webhook_deliveries' columns)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    subscribed = [endpoint_id for endpoint_id, events in endpoints if event_type in events]
    rows = []
    for payload in payloads if subscribed else ():
        body = event_body(event_type, payload, at=now)
        subject = payload.get(SUBJECT[event_type])
        rows += [
            {
                "id": "msg_" + uuid.uuid4().hex, "endpoint_id": endpoint_id, "event_type": event_type,
                "assessment_id": subject if isinstance(subject, str) else None, "body": body,
                "status": PENDING, "attempts": 0, "next_attempt_at": now, "retry_until": now + RETRY_WINDOW,
                "created_at": now,
            }
            for endpoint_id in subscribed
        ]
    return rows


INSERT_DELIVERY = (
    "INSERT INTO webhook_deliveries (id, endpoint_id, event_type, assessment_id, body, status, attempts, next_attempt_at, "
    "retry_until, created_at) VALUES (:id, :endpoint_id, :event_type, :assessment_id, :body, :status, :attempts, "
    ":next_attempt_at, :retry_until, :created_at)"
)


# -- sending -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds for one attempt, with what it needs to send it."""

    id: str
    claim: str
    url: str
    secret: str
    body: str
    attempts: int  # including this one
    retry_until: datetime


def claim_due(*, now: datetime, lease: timedelta, limit: int, session: Session) -> list[Claimed]:
    """Claim up to `limit` due deliveries of enabled endpoints for one attempt each.

    A claim writes a token and pushes `next_attempt_at` to the end of the lease, so no other
    worker takes the delivery while this one sends it, and it is due again if this one dies.
    The send itself happens after the commit: holding a row lock (and, on SQLite, the
    database's only write lock) through an HTTP call of up to 10 s would stall assessments.

    On PostgreSQL the candidates are picked with FOR UPDATE SKIP LOCKED, so concurrent workers
    take different deliveries instead of queueing on the same rows; the outer WHERE repeats the
    due test, which PostgreSQL re-checks on a row another claim changed meanwhile. On SQLite
    the clause is not rendered and not needed: the UPDATE is the transaction's first statement,
    so it takes the one write lock before it reads, and claims run one after another.
    """
    token = uuid.uuid4().hex
    due = (
        sa.select(DELIVERY.seq)
        .join(WebhookEndpoint, WebhookEndpoint.id == DELIVERY.endpoint_id)
        .where(DELIVERY.status == PENDING, DELIVERY.next_attempt_at <= now, WebhookEndpoint.enabled == sa.true())
        .order_by(DELIVERY.next_attempt_at, DELIVERY.seq)
        .limit(limit)
        .with_for_update(of=WebhookDelivery.__table__, skip_locked=True)
    )
    session.execute(
        sa.update(WebhookDelivery.__table__)
        .where(DELIVERY.seq.in_(due.scalar_subquery()), DELIVERY.status == PENDING, DELIVERY.next_attempt_at <= now)
        .values(claim=token, next_attempt_at=now + lease, attempts=DELIVERY.attempts + 1, last_attempt_at=now)
    )
    rows = session.execute(
        sa.select(DELIVERY.id, DELIVERY.body, DELIVERY.attempts, DELIVERY.retry_until, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(WebhookEndpoint, WebhookEndpoint.id == DELIVERY.endpoint_id)
        .where(DELIVERY.claim == token)
        .order_by(DELIVERY.seq)
    )
    return [
        Claimed(id=r.id, claim=token, url=r.url, secret=r.secret, body=r.body, attempts=r.attempts, retry_until=r.retry_until)
        for r in rows
    ]


def record_attempt(
    claimed: Claimed,
    *,
    succeeded: bool,
    at: datetime,
    next_attempt_at: datetime | None,
    status_code: int | None,
    error: str | None,
    response: str | None,
    session: Session,
) -> bool:
    """Note an attempt's outcome; a delivery that is not retried (`next_attempt_at` None) has
    failed for good. False when the claim had lapsed and another worker holds the delivery."""
    values: dict[str, Any] = {
        "claim": None, "last_status_code": status_code, "last_error": error, "last_response": response,
    }
    if succeeded:
        values.update(status=SUCCEEDED, delivered_at=at, next_attempt_at=None)
    elif next_attempt_at is None:
        values.update(status=FAILED, next_attempt_at=None)
    else:
        values.update(next_attempt_at=next_attempt_at)
    updated = session.execute(
        sa.update(WebhookDelivery.__table__).where(DELIVERY.id == claimed.id, DELIVERY.claim == claimed.claim).values(**values)
    )
    return bool(updated.rowcount)


# -- the delivery log --------------------------------------------------------------------

def deliveries_page(
    endpoint_id: str, *, limit: int, before: int | None = None, status: str | None = None, session: Session
) -> list[WebhookDelivery]:
    """Up to `limit` deliveries of an endpoint, newest first, older than the position `before`."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(col(WebhookDelivery.seq) < before)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return list(session.exec(query.order_by(col(WebhookDelivery.seq).desc()).limit(limit)))


def redeliver(endpoint_id: str, delivery_id: str, *, now: datetime, actor: str, session: Session) -> WebhookDelivery:
    """Send a delivery again now (the same webhook-id, so receivers can tell a repeat), with a
    fresh retry window; Conflict while a worker is sending it."""
    endpoint = get_endpoint(endpoint_id, session=session)
    if "\x00" in delivery_id:  # no id holds one, and PostgreSQL refuses it in a query
        raise NotFound(f"no delivery {delivery_id!r} of webhook endpoint {endpoint_id!r}")
    not_in_flight = sa.or_(DELIVERY.claim.is_(None), DELIVERY.status != PENDING, DELIVERY.next_attempt_at <= now)
    updated = session.execute(
        sa.update(WebhookDelivery.__table__)
        .where(DELIVERY.id == delivery_id, DELIVERY.endpoint_id == endpoint.id, not_in_flight)
        .values(status=PENDING, next_attempt_at=now, retry_until=now + RETRY_WINDOW, claim=None)
    )
    row = session.exec(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id)
    ).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id!r} of webhook endpoint {endpoint_id!r}")
    if not updated.rowcount:
        raise Conflict("the delivery is being sent right now; look at the log again in a few seconds")
    session.refresh(row)
    record_audit(actor, "webhook.redeliver", target=endpoint.id, detail={"delivery": delivery_id}, session=session)
    return row


def purge_deliveries(cutoff: datetime, *, session: Session) -> int:
    """Delete finished deliveries (succeeded or failed) created before `cutoff`: their bodies
    hold assessments, which retention removes too. Pending ones are still to be sent."""
    deleted = session.execute(
        sa.delete(WebhookDelivery).where(col(WebhookDelivery.created_at) < cutoff, col(WebhookDelivery.status) != PENDING)
    )
    return deleted.rowcount or 0


def delete_deliveries_about(assessment_ids: list[str], *, session: Session) -> int:
    """Delete every delivery about these assessments, sent or not (erasure, retention)."""
    deleted = 0
    for start in range(0, len(assessment_ids), 500):
        chunk = assessment_ids[start:start + 500]
        deleted += session.execute(sa.delete(WebhookDelivery).where(col(WebhookDelivery.assessment_id).in_(chunk))).rowcount or 0
    return deleted
