"""/v1/revisions: the feed of later verdicts on earlier signups, in the order they became visible (scope assess or admin)."""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from verify.api.auth import requires_scope
from verify.api.bodies import parse_query
from verify.api.context import db_session
from verify.api.paging import decode_cursor, encode_cursor
from verify.api.schemas import text
from verify.store.revisions import revision_document, revisions_after

bp = Blueprint("revisions", __name__, url_prefix="/v1/revisions")


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: text(200) | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


def sequence_cursor(sequence: int) -> str:
    return encode_cursor({"after": sequence})


@bp.get("")
@requires_scope("assess", "admin")
def feed():
    query = parse_query(FeedQuery)
    after = decode_cursor(query.after, key="after", kind=int, parameter="after") or 0
    rows = revisions_after(after, limit=query.limit, session=db_session())
    # The cursor always moves on from the last revision seen (or stays put): a poller keeps it
    # and asks again later; an empty page is no end of the feed.
    last = rows[-1].sequence if rows else after
    return {"items": [revision_document(row) for row in rows], "next_cursor": sequence_cursor(last)}
