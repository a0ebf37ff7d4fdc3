"""Counts over stored assessments for a time window: verdicts per bucket, top reasons, top keys."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.store.models import Assessment

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
VERDICTS = ("allow", "challenge", "deny")
# key name in the answer -> column; the keys a campaign is blocked by.
TOP_KEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email_domain", "email_domain"),
    ("ip_network", "ip_network"),
    ("asn", "asn"),
    ("device_id", "device_id"),
)
REASON_ROWS_CAP = 100_000  # reasons are read row by row; past this many rows the counts are of the newest


@dataclass(frozen=True)
class Stats:
    buckets: list[dict]
    top_reasons: list[dict]
    top_keys: list[dict]


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start of the bucket (UTC hour or day) that holds `moment`."""
    moment = moment.astimezone(timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0) if bucket == "hour" else moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucket_column(bucket: str, dialect: str) -> sa.ColumnElement:
    at = col(Assessment.occurred_at)
    if dialect == "postgresql":
        return sa.func.date_trunc(bucket, sa.func.timezone("UTC", at))
    # SQLite stores UTC as text "YYYY-MM-DD HH:MM:SS[.ffffff]".
    return sa.func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00", at)


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def verdict_buckets(since: datetime, until: datetime, bucket: str, *, session: Session) -> list[dict]:
    """Verdict counts per bucket from the one holding `since` up to `until`, empty buckets included."""
    column = _bucket_column(bucket, session.get_bind().dialect.name).label("bucket")
    rows = session.execute(
        select(column, Assessment.verdict, sa.func.count())
        .where(Assessment.occurred_at >= since, Assessment.occurred_at < until)
        .group_by(column, Assessment.verdict)
    )
    counts: dict[datetime, Counter] = {}
    for start, verdict, count in rows:
        counts.setdefault(_as_utc(start), Counter())[verdict] += count
    found, start, step = [], bucket_start(since, bucket), BUCKETS[bucket]
    last = datetime.max.replace(tzinfo=timezone.utc) - step  # year 9999's last bucket has no next one
    while start < until:
        found.append({"start": start, **{verdict: counts.get(start, Counter())[verdict] for verdict in VERDICTS}})
        if start > last:
            break
        start += step
    return found


def top_reasons(since: datetime, until: datetime, *, limit: int, session: Session) -> list[dict]:
    """The reason codes that fired most often in the window."""
    query = (
        select(Assessment.reasons)
        .where(Assessment.occurred_at >= since, Assessment.occurred_at < until)
        .order_by(col(Assessment.occurred_at).desc())
        .limit(REASON_ROWS_CAP)
        .execution_options(yield_per=2000)
    )
    counts: Counter[str] = Counter()
    for reasons in session.execute(query).scalars():
        counts.update({reason["code"] for reason in reasons or [] if isinstance(reason, dict) and "code" in reason})
    return [{"code": code, "count": count} for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]]


def top_keys(since: datetime, until: datetime, *, limit: int, session: Session) -> list[dict]:
    """The domains, networks, ASNs and devices behind the most challenges and denies in the window."""
    found = []
    for key, name in TOP_KEY_COLUMNS:
        column = getattr(Assessment, name)
        challenge = sa.func.sum(sa.case((Assessment.verdict == "challenge", 1), else_=0))
        deny = sa.func.sum(sa.case((Assessment.verdict == "deny", 1), else_=0))
        rows = session.execute(
            select(column, challenge, deny)
            .where(
                Assessment.occurred_at >= since,
                Assessment.occurred_at < until,
                col(Assessment.verdict).in_(("challenge", "deny")),
                col(column).is_not(None),
            )
            .group_by(column)
            .order_by((challenge + deny).desc(), column)
            .limit(limit)
        )
        found += [{"key": key, "value": str(value), "challenge": int(c), "deny": int(d)} for value, c, d in rows]
    found.sort(key=lambda item: (-(item["challenge"] + item["deny"]), item["key"], item["value"]))
    return found[:limit]


def window_stats(since: datetime, until: datetime, bucket: str, *, limit: int = 10, session: Session) -> Stats:
    return Stats(
        buckets=verdict_buckets(since, until, bucket, session=session),
        top_reasons=top_reasons(since, until, limit=limit, session=session),
        top_keys=top_keys(since, until, limit=limit, session=session),
    )
