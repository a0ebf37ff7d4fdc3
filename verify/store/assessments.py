"""Assessments and their feedback: stored, fetched, searched, related, purged and erased."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from verify.errors import Conflict, NotFound
from verify.store.driver import json_text
from verify.store.models import Assessment, Feedback, utcnow
from verify.store.stamps import ASSESSMENTS_STAMP, bump_stamp
from verify.store.webhooks import delete_deliveries_about
from verify.store.revisions import delete_revisions_of, enqueue_feedback

ASSESSMENT = Assessment.__table__.c

# Feedback is the outcome of a challenge or a review, a handful per assessment; the cap keeps
# one assessment from growing without bound (3,000 notes made one GET 3.4 MB).
FEEDBACK_PER_ASSESSMENT = 50


# The columns an assessment is inserted with (all but `seq`), for the driver's INSERT.
COLUMNS = tuple(column.name for column in Assessment.__table__.columns if column.name != "seq")
JSON_COLUMNS = ("metadata", "reasons", "signals")
INSERT_ASSESSMENT = f"INSERT INTO assessments ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + name for name in COLUMNS)})"
FIND_IDEMPOTENT = "SELECT id, request_hash FROM assessments WHERE api_key_id = :api_key_id AND idempotency_key = :idempotency_key"


@dataclass(frozen=True)
class NewAssessment:
    """An assessment as the hot path stores and answers it: the columns of `Assessment`, without
    the ORM object (which took 0.25 ms to build per request)."""

    id: str
    created_at: datetime
    occurred_at: datetime
    verdict: str
    score: int
    policy_version: int
    api_key_id: int | None
    idempotency_key: str | None
    request_hash: str | None
    email: str
    email_canonical: str | None
    email_domain: str | None
    local_template: str | None
    phone: str | None
    phone_e164: str | None
    phone_block: str | None
    ip: str | None
    ip_network: str | None
    asn: int | None
    country: str | None
    device_id: str | None
    payment_fingerprint: str | None
    user_agent: str | None
    external_id: str | None
    metadata_: dict | None
    reasons: list
    signals: dict

    def values(self) -> dict[str, Any]:
        """Column name -> value, JSON columns as text, for INSERT_ASSESSMENT."""
        values = {name: getattr(self, "metadata_" if name == "metadata" else name) for name in COLUMNS}
        for name in JSON_COLUMNS:
            values[name] = None if values[name] is None else json_text(values[name])
        return values


def get_assessment(assessment_id: str, *, session: Session) -> Assessment:
    if "\x00" in assessment_id:  # no id holds one, and PostgreSQL refuses it in a query
        raise NotFound(f"no assessment with id {assessment_id!r}")
    row = session.exec(select(Assessment).where(Assessment.id == assessment_id)).first()
    if row is None:
        raise NotFound(f"no assessment with id {assessment_id!r}")
    return row


# -- feedback ----------------------------------------------------------------------------

def add_feedback(
    assessment: Assessment, *, label: str, source: str, note: str | None, actor: str, session: Session
) -> Feedback:
    """Store one piece of feedback and queue the revisions it causes; Conflict when the assessment holds FEEDBACK_PER_ASSESSMENT already."""
    given = session.execute(
        sa.select(sa.func.count()).select_from(Feedback).where(Feedback.assessment_id == assessment.id)
    ).scalar_one()
    if given >= FEEDBACK_PER_ASSESSMENT:
        raise Conflict(f"the assessment {assessment.id!r} holds {FEEDBACK_PER_ASSESSMENT} pieces of feedback, the most it takes")
    row = Feedback(assessment_id=assessment.id, label=label, source=source, note=note, actor=actor, created_at=utcnow())
    session.add(row)
    session.flush()
    enqueue_feedback(assessment, label=label, source=source, session=session)  # the re-judging it causes, in this transaction
    return row


def feedback_for(assessment_ids: Iterable[str], *, session: Session) -> dict[str, list[Feedback]]:
    """Feedback per assessment, oldest first, for a page of assessments."""
    ids = list(dict.fromkeys(assessment_ids))
    found: dict[str, list[Feedback]] = {assessment_id: [] for assessment_id in ids}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start:chunk_start + 500]
        for row in session.exec(
            select(Feedback).where(col(Feedback.assessment_id).in_(chunk)).order_by(Feedback.created_at, Feedback.id)
        ):
            found[row.assessment_id].append(row)
    return found


# -- retention and erasure -------------------------------------------------------------

def assessment_ids_before(cutoff: datetime, *, limit: int, session: Session) -> list[str]:
    """Ids of up to `limit` assessments that occurred before `cutoff`, oldest first."""
    return list(session.exec(
        select(Assessment.id).where(Assessment.occurred_at < cutoff).order_by(col(Assessment.occurred_at)).limit(limit)
    ))


def assessment_ids_of_person(
    *,
    email_canonical: str | None = None,
    email: str | None = None,
    phone_e164: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    session: Session,
) -> list[str]:
    """Ids of the assessments that name this person by any of the given (normalised) values."""
    matches = []
    if email_canonical is not None:
        matches.append(Assessment.email_canonical == email_canonical)
    if email is not None:
        matches.append(Assessment.email == email)
    if phone_e164 is not None:
        matches += [Assessment.phone_e164 == phone_e164, Assessment.phone == phone_e164]
    if phone is not None:
        matches.append(Assessment.phone == phone)
    if external_id is not None:
        matches.append(Assessment.external_id == external_id)
    if not matches:
        return []
    return list(session.exec(select(Assessment.id).where(sa.or_(*matches))))


def delete_assessments(ids: list[str], *, session: Session) -> tuple[int, int]:
    """Delete these assessments, their feedback, their revisions and the webhook deliveries about
    them; return (assessments, feedback) deleted."""
    delete_revisions_of(ids, session=session)
    assessments = feedback = 0
    delete_deliveries_about(ids, session=session)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        feedback += session.execute(sa.delete(Feedback).where(col(Feedback.assessment_id).in_(chunk))).rowcount
        assessments += session.execute(sa.delete(Assessment).where(col(Assessment.id).in_(chunk))).rowcount
    if assessments:
        bump_stamp(ASSESSMENTS_STAMP, session=session)  # each worker drops the history rows it keeps (store/recent.py)
    return assessments, feedback


# -- search and clusters -----------------------------------------------------------------

# The keys that tie one person's or one campaign's signups together (not the email domain:
# a free-mail domain is shared by millions of strangers).
LINKING_COLUMNS = ("email_canonical", "phone_e164", "device_id", "ip_network")


@dataclass(frozen=True)
class AssessmentFilter:
    """Already-normalised search filters; None means any."""

    verdict: str | None = None
    verdicts: tuple[str, ...] | None = None
    # Only signups sharing a mailbox, phone, device or IP network with a challenged or denied one.
    linked_to_flagged: bool = False
    email_canonical: str | None = None
    email_domain: str | None = None
    ips: tuple[str, ...] | None = None
    ip_networks: tuple[str, ...] | None = None
    phone_e164: str | None = None
    device_id: str | None = None
    payment_fingerprint: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_assessments(
    filters: AssessmentFilter, *, limit: int, after: tuple[datetime, int] | None, session: Session
) -> tuple[list[Assessment], tuple[datetime, int] | None]:
    """A page of assessments, newest first, and the position to continue after (None at the end)."""
    query = select(Assessment)
    equal = {
        "verdict": filters.verdict,
        "email_canonical": filters.email_canonical,
        "email_domain": filters.email_domain,
        "phone_e164": filters.phone_e164,
        "device_id": filters.device_id,
        "payment_fingerprint": filters.payment_fingerprint,
    }
    for name, value in equal.items():
        if value is not None:
            query = query.where(ASSESSMENT[name] == value)
    if filters.verdicts is not None:
        query = query.where(col(Assessment.verdict).in_(filters.verdicts))
    if filters.linked_to_flagged:
        other = aliased(Assessment)
        shared = [getattr(other, name) == getattr(Assessment, name) for name in LINKING_COLUMNS]
        query = query.where(
            sa.exists().where(col(other.verdict).in_(("challenge", "deny")), other.seq != Assessment.seq, sa.or_(*shared))
        )
    if filters.ips is not None:
        query = query.where(col(Assessment.ip).in_(filters.ips))
    if filters.ip_networks is not None:
        query = query.where(col(Assessment.ip_network).in_(filters.ip_networks))
    if filters.reason is not None:
        # Reasons are stored as a JSON list; a quoted code cannot occur inside a JSON-escaped detail.
        query = query.where(sa.cast(ASSESSMENT.reasons, sa.Text).like(f'%"{_like_literal(filters.reason)}"%', escape="\\"))
    if filters.since is not None:
        query = query.where(Assessment.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(Assessment.occurred_at < filters.until)
    if after is not None:
        at, seq = after
        query = query.where(sa.or_(Assessment.occurred_at < at, sa.and_(Assessment.occurred_at == at, col(Assessment.seq) < seq)))
    query = query.order_by(col(Assessment.occurred_at).desc(), col(Assessment.seq).desc()).limit(limit + 1)
    rows = list(session.exec(query))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (last.occurred_at, last.seq)


# shared -> column of the Related schema's groups, in the order they are shown.
RELATED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email_canonical", "email_canonical"),
    ("phone", "phone_e164"),
    ("device_id", "device_id"),
    ("payment_fingerprint", "payment_fingerprint"),
    ("ip", "ip"),
    ("ip_network", "ip_network"),
    ("email_domain", "email_domain"),
)


@dataclass(frozen=True)
class RelatedGroup:
    shared: str
    value: str
    count: int
    items: list[Any]


def related_assessments(
    row: Assessment, *, limit: int, count_cap: int, skip: Iterable[str] = (), session: Session
) -> list[RelatedGroup]:
    """The other assessments sharing each of the row's keys: a capped count and the newest `limit`."""
    groups = []
    skipped = set(skip)
    for shared, column in RELATED_COLUMNS:
        value = getattr(row, column)
        if value is None or shared in skipped:
            continue
        same = [ASSESSMENT[column] == value, ASSESSMENT.id != row.id]
        capped = sa.select(sa.literal(1)).select_from(Assessment.__table__).where(*same).limit(count_cap).subquery()
        total = session.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        if total == 0:
            continue
        items = session.execute(
            sa.select(ASSESSMENT.id, ASSESSMENT.email, ASSESSMENT.verdict, ASSESSMENT.occurred_at)
            .where(*same)
            .order_by(ASSESSMENT.occurred_at.desc(), ASSESSMENT.seq.desc())
            .limit(limit)
        ).all()
        groups.append(RelatedGroup(shared=shared, value=str(value), count=total, items=list(items)))
    return groups
