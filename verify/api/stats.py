"""/v1/stats: verdicts over time, top reasons and the keys behind challenges and denies (scope admin or review)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict

from verify.api.auth import requires_scope
from verify.api.bodies import parse_query, query_error
from verify.api.context import db_session
from verify.api.schemas import RFC3339, timestamp
from verify.store.stats import BUCKETS, window_stats

bp = Blueprint("stats", __name__, url_prefix="/v1/stats")

MAX_BUCKETS = 1000
DEFAULT_SPAN = {"hour": 24, "day": 30}  # buckets shown when `since` is not given


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: RFC3339 | None = None
    until: RFC3339 | None = None
    bucket: Literal["hour", "day"] = "hour"


def window(query: StatsQuery) -> tuple[datetime, datetime]:
    until = query.until or datetime.now(timezone.utc)
    since = query.since or default_since(until, query.bucket)
    if since >= until:
        raise query_error("since", "must be before `until`")
    if (until - since) / BUCKETS[query.bucket] > MAX_BUCKETS:
        raise query_error("since", f"at most {MAX_BUCKETS} buckets: choose a later `since` or `bucket=day`")
    return since, until


def default_since(until: datetime, bucket: str) -> datetime:
    """DEFAULT_SPAN buckets before `until`, or the first moment of year 1 when that is earlier."""
    span = DEFAULT_SPAN[bucket] * BUCKETS[bucket]
    earliest = datetime.min.replace(tzinfo=timezone.utc)
    return until - span if until - earliest > span else earliest


@bp.get("")
@requires_scope("admin", "review")
def read():
    query = parse_query(StatsQuery)
    since, until = window(query)
    stats = window_stats(since, until, query.bucket, session=db_session())
    return {
        "since": timestamp(since),
        "until": timestamp(until),
        "bucket": query.bucket,
        "buckets": [{**item, "start": timestamp(item["start"])} for item in stats.buckets],
        "top_reasons": stats.top_reasons,
        "top_keys": stats.top_keys,
    }
