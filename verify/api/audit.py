"""/v1/audit: who changed lists, policy, keys and stored data, and when (scope admin)."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from verify.api.auth import requires_scope
from verify.api.bodies import parse_query
from verify.api.context import db_session
from verify.api.paging import decode_cursor, encode_cursor
from verify.api.schemas import RFC3339, query_text, text, timestamp
from verify.store.audit import AuditFilter, audit_page
from verify.store.models import AuditEvent

bp = Blueprint("audit", __name__, url_prefix="/v1/audit")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: text(200) | None = None
    actor: query_text(100) | None = None
    action: query_text(64) | None = None
    target: query_text(200) | None = None
    since: RFC3339 | None = None
    until: RFC3339 | None = None

    def filters(self) -> AuditFilter:
        return AuditFilter(actor=self.actor, action=self.action, target=self.target, since=self.since, until=self.until)


def event_json(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "at": timestamp(row.at), "actor": row.actor, "action": row.action, "target": row.target, "detail": row.detail}


@bp.get("")
@requires_scope("admin")
def index():
    query = parse_query(AuditQuery)
    before = decode_cursor(query.cursor, key="before", kind=int)
    rows = audit_page(limit=query.limit + 1, before=before, filters=query.filters(), session=db_session())
    page, more = rows[:query.limit], len(rows) > query.limit
    return {"items": [event_json(row) for row in page], "next_cursor": encode_cursor({"before": page[-1].id}) if more else None}
