"""/v1/webhooks: endpoints told of revisions and assessments, their delivery log, redeliver (scope admin)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from flask import Blueprint
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, parse_query, read_json
from verify.api.context import db_session
from verify.api.paging import decode_cursor, encode_cursor
from verify.api.schemas import text, timestamp
from verify.store import webhooks as store
from verify.store.transactions import committed
from verify.store.models import WebhookDelivery, WebhookEndpoint

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")

EventType = Literal["revision.created", "assessment.created"]


def webhook_url(value: str) -> str:
    """An absolute http(s) URL with a host, sent as given."""
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        value.encode("utf-8")
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises for a port that is not a number from 0 to 65535)
    except (ValueError, UnicodeEncodeError):
        raise ValueError("is not a URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if "%" in parts.hostname:  # a zone id names an interface of this machine, not a receiver
        raise ValueError("must not hold an IPv6 zone id")
    # Credentials in the URL would show in every listing; the signature is what authenticates us.
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold a user name or password")
    return value


Url = Annotated[text(2000), AfterValidator(webhook_url)]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(store.EVENT_TYPES)), AfterValidator(lambda v: list(dict.fromkeys(v)))]


class WebhookIn(BaseModel):
    """The body of POST /v1/webhooks."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    events: Events
    description: text(500) = ""
    enabled: StrictBool = True


class WebhookChange(BaseModel):
    """The body of PATCH /v1/webhooks/{id}: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    description: text(500) | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> "WebhookChange":
        if not self.model_fields_set:
            raise ValueError("give at least one of url, events, description, enabled")
        if any(getattr(self, name) is None for name in self.model_fields_set):
            raise ValueError("a field given must not be null")
        return self


class DeliveriesQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: text(200) | None = None
    status: Literal["pending", "succeeded", "failed"] | None = None


def endpoint_json(row: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    shown = {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "description": row.description,
        "enabled": row.enabled,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
    }
    if secret:
        shown["secret"] = row.secret
    return shown


def _moment(value: datetime | None) -> str | None:
    return timestamp(value) if value else None


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": timestamp(row.created_at),
        "last_attempt_at": _moment(row.last_attempt_at),
        "next_attempt_at": _moment(row.next_attempt_at),
        "delivered_at": _moment(row.delivered_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "last_response": row.last_response,
    }


def actor() -> str:
    return current_key().name


@bp.post("")
@requires_scope("admin")
def create():
    body = parse(WebhookIn, read_json())
    session = db_session()
    row = committed(lambda: store.create_endpoint(**body.model_dump(), actor=actor(), session=session),
                    session=session, conflict="the endpoint collided with a concurrent change; retry")
    return endpoint_json(row, secret=True), 201


@bp.get("")
@requires_scope("admin")
def index():
    return {"items": [endpoint_json(row) for row in store.list_endpoints(session=db_session())]}


@bp.get("/<webhook_id>")
@requires_scope("admin")
def read(webhook_id: str):
    return endpoint_json(store.get_endpoint(webhook_id, session=db_session()))


@bp.patch("/<webhook_id>")
@requires_scope("admin")
def change(webhook_id: str):
    body = parse(WebhookChange, read_json())
    session = db_session()
    row = committed(lambda: store.update_endpoint(webhook_id, body.model_dump(exclude_unset=True), actor=actor(), session=session),
                    session=session, conflict="the endpoint changed concurrently; retry")
    return endpoint_json(row)


@bp.delete("/<webhook_id>")
@requires_scope("admin")
def remove(webhook_id: str):
    session = db_session()
    committed(lambda: store.delete_endpoint(webhook_id, actor=actor(), session=session),
              session=session, conflict="the endpoint changed concurrently; retry")
    return "", 204


@bp.get("/<webhook_id>/deliveries")
@requires_scope("admin")
def deliveries(webhook_id: str):
    query = parse_query(DeliveriesQuery)
    session = db_session()
    endpoint = store.get_endpoint(webhook_id, session=session)
    before = decode_cursor(query.cursor, key="before", kind=int)
    rows = store.deliveries_page(endpoint.id, limit=query.limit + 1, before=before, status=query.status, session=session)
    page, more = rows[:query.limit], len(rows) > query.limit
    return {"items": [delivery_json(row) for row in page], "next_cursor": encode_cursor({"before": page[-1].seq}) if more else None}


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
@requires_scope("admin")
def redeliver(webhook_id: str, delivery_id: str):
    session = db_session()
    row = committed(lambda: store.redeliver(webhook_id, delivery_id, now=datetime.now(timezone.utc), actor=actor(), session=session),
                    session=session, conflict="the delivery changed concurrently; retry")
    return delivery_json(row), 202
