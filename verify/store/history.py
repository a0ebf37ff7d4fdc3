"""History: capped counts of earlier signups per key and window, first sightings, and reputation."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from verify.store.models import Assessment, Feedback, UTCDateTime

ASSESSMENT = Assessment.__table__.c


def _earlier(conditions: list, *, start: Any, end: Any, cap: int, distinct: str | None = None):
    """How many rows (or distinct values of a column) match, over a LIMIT-capped subquery.

    A hot key costs at most `cap` index entries however large the table grows.
    """
    picked = ASSESSMENT[distinct].label("value") if distinct else sa.literal(1).label("value")
    capped = (
        sa.select(picked)
        .select_from(Assessment.__table__)
        .where(*conditions, ASSESSMENT.occurred_at >= start, ASSESSMENT.occurred_at < end)
        .limit(cap)
        .subquery()
    )
    counted = sa.func.count(sa.distinct(capped.c.value)) if distinct else sa.func.count()
    return sa.select(counted).select_from(capped).scalar_subquery()


# A phone or device is counted by the other mailboxes it signed up, a block by its other numbers.
DISTINCT_COUNTS = {"phone": "email_canonical", "device": "email_canonical", "payment": "email_canonical", "phone_block": "phone_e164"}


def _param(name: str):
    return sa.bindparam(name, type_=sa.String() if name != "asn" else sa.BigInteger())


# key -> (conditions with bind parameters, the parameters it needs from the keys)
HISTORY_KEYS: dict[str, tuple[list, tuple[str, ...]]] = {
    "email_canonical": ([ASSESSMENT.email_canonical == _param("email_canonical")], ("email_canonical",)),
    # Case is how people type, not how farms alias: only another spelling counts as a variant.
    # `email` is stored normalised (identity.email_key: NFC, case folded where the provider
    # ignores case, IDNA domain), so plain equality agrees on SQLite and PostgreSQL alike.
    "email_variants": (
        [ASSESSMENT.email_canonical == _param("email_canonical"), ASSESSMENT.email != _param("email")],
        ("email_canonical", "email"),
    ),
    "email_domain": ([ASSESSMENT.email_domain == _param("email_domain")], ("email_domain",)),
    "local_template": (
        [ASSESSMENT.local_template == _param("local_template"), ASSESSMENT.email_domain == _param("email_domain")],
        ("local_template", "email_domain"),
    ),
    "phone": (
        [ASSESSMENT.phone_e164 == _param("phone_e164"), sa.func.coalesce(ASSESSMENT.email_canonical, "") != _param("other_mailbox")],
        ("phone_e164",),
    ),
    "phone_block": (
        [ASSESSMENT.phone_block == _param("phone_block"), sa.func.coalesce(ASSESSMENT.phone_e164, "") != _param("other_number")],
        ("phone_block",),
    ),
    "ip": ([ASSESSMENT.ip == _param("ip")], ("ip",)),
    "ip_network": ([ASSESSMENT.ip_network == _param("ip_network")], ("ip_network",)),
    "asn": ([ASSESSMENT.asn == _param("asn")], ("asn",)),
    "device": (
        [ASSESSMENT.device_id == _param("device_id"), sa.func.coalesce(ASSESSMENT.email_canonical, "") != _param("other_mailbox")],
        ("device_id",),
    ),
    "payment": (
        [ASSESSMENT.payment_fingerprint == _param("payment_fingerprint"), sa.func.coalesce(ASSESSMENT.email_canonical, "") != _param("other_mailbox")],
        ("payment_fingerprint",),
    ),
}
WINDOW_NAMES = ("short", "medium", "long")


@functools.lru_cache(maxsize=256)
def _history_statement(names: tuple[str, ...], cap: int) -> sa.Select:
    """One SELECT of capped counts for these keys; built once per shape, so the compiled form is reused."""
    columns = []
    for name in names:
        conditions, _ = HISTORY_KEYS[name]
        windows = ("long",) if name == "email_variants" else WINDOW_NAMES
        for window in windows:
            start = sa.bindparam(f"start_{window}", type_=UTCDateTime())
            count = _earlier(conditions, start=start, end=sa.bindparam("end", type_=UTCDateTime()), cap=cap, distinct=DISTINCT_COUNTS.get(name))
            columns.append(count.label(f"{name}__{window}"))
    return sa.select(*columns)


def history_counts(
    keys: Mapping[str, Any],
    *,
    email: str,
    windows: Mapping[str, int],
    end: datetime,
    cap: int,
    session: Session,
) -> dict[str, dict[str, int]]:
    """Earlier signups (occurred_at before `end`) per key and window, each at most `cap`, in one round trip.

    Only the keys this signup has are counted; `keys` uses the Assessment column names.
    """
    names = tuple(name for name, (_, needs) in HISTORY_KEYS.items() if all(keys.get(need) is not None for need in needs if need != "email"))
    if not names:
        return {}
    params: dict[str, Any] = {column: keys.get(column) for column in ("email_canonical", "email_domain", "local_template", "phone_e164", "phone_block", "ip", "ip_network", "asn", "device_id", "payment_fingerprint")}
    params.update(
        email=email,
        other_mailbox=keys.get("email_canonical") or "",
        other_number=keys.get("phone_e164") or "",
        end=end,
        **{f"start_{window}": end - timedelta(seconds=windows[window]) for window in WINDOW_NAMES},
    )
    row = session.execute(_history_statement(names, cap), params).one()
    counts: dict[str, dict[str, int]] = {}
    for label, value in row._mapping.items():
        name, window = label.rsplit("__", 1)
        counts.setdefault(name, {})[window] = int(value)
    return counts


def first_seen(column: str, value: Any, *, before: datetime, session: Session) -> datetime | None:
    """When a key first appeared in the history before `before` (one index seek)."""
    return session.execute(
        sa.select(ASSESSMENT.occurred_at)
        .where(ASSESSMENT[column] == value, ASSESSMENT.occurred_at < before)
        .order_by(ASSESSMENT.occurred_at)
        .limit(1)
    ).scalar()


@functools.lru_cache(maxsize=64)
def _reputation_statement(columns: tuple[str, ...], sample: int) -> sa.Select:
    """The most recent `sample` earlier signups of each key, in one UNION ALL, with their feedback."""
    before = sa.bindparam("before", type_=UTCDateTime())
    recents = [
        sa.select(
            sa.select(sa.literal(column).label("key"), ASSESSMENT.id, ASSESSMENT.occurred_at, ASSESSMENT.verdict)
            .where(ASSESSMENT[column] == _param(column), ASSESSMENT.occurred_at < before)
            # seq breaks ties in arrival order, so both databases sample the same signups.
            .order_by(ASSESSMENT.occurred_at.desc(), ASSESSMENT.seq.desc())
            .limit(sample)
            .subquery()
        )
        for column in columns
    ]
    recent = sa.union_all(*recents).subquery()
    feedback = Feedback.__table__.c
    # Only the latest label given by `before` is read, one index seek per sampled signup, so
    # the cost does not grow with the feedback an assessment has (3,000 notes on one
    # assessment once made its neighbours' assessments 12 times slower).
    latest_label = (
        sa.select(feedback.label)
        .where(feedback.assessment_id == recent.c.id, feedback.created_at <= before)
        .order_by(feedback.created_at.desc(), feedback.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(recent.c.key, recent.c.occurred_at, recent.c.verdict, latest_label.label("label")).select_from(recent)


def reputation_evidence(
    values: Mapping[str, Any], *, before: datetime, sample: int, session: Session
) -> dict[str, list[tuple[datetime, str, str | None]]]:
    """Per key column: (occurred_at, verdict, latest feedback label) of its most recent `sample` earlier signups.

    One round trip for all keys. Feedback counts only if it was given by `before`: a replay
    then sees what live traffic saw.
    """
    columns = tuple(sorted(values))
    if not columns:
        return {}
    rows = session.execute(_reputation_statement(columns, sample), {**values, "before": before})
    evidence: dict[str, list[tuple[datetime, str, str | None]]] = {column: [] for column in columns}
    for column, occurred_at, verdict, label in rows:
        evidence[column].append((_utc(occurred_at), verdict, label))
    return evidence


def _utc(moment: datetime) -> datetime:
    """A UNION's column loses its type on SQLite: read the stored UTC text back as aware."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
