"""Revisions and the jobs that make them: queued with their evidence, claimed in batches, recorded in feed order.

Order of the feed. A revision's `sequence` is taken from the `revision_sequence` stamp by an
UPDATE, whose row lock is held until the transaction commits: a second writer waits for the
first to commit before it can take the next numbers. So a sequence is never visible before a
smaller one, and a poller that reads `sequence > cursor` never skips one, however many
instances write at once (PostgreSQL); on SQLite every write is serialised anyway. The lock is
held only by the short transaction of one batch of re-judging, never by an assessment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.engine.policy import Policy, parse_policy
from verify.engine.reasons import default_points
from verify.engine import history
from verify.engine.revisions import (
    CLUSTER_LIMITS,
    Evidence,
    Link,
    StoredAssessment,
    cluster_evidence,
    crossed_limits,
    evidence_document,
    fraud_label_evidence,
    ip_keys,
    list_evidence,
)
from verify.store.audit import record_audit
from verify.store.driver import Driver, json_text
from verify.store.models import Assessment, Feedback, ListDef, Revision, RevisionJob, Stamp, utcnow
from verify.store.policy import current_policy
from verify.store.webhooks import REVISION_CREATED, enqueue_events

ASSESSMENT = Assessment.__table__.c
SEQUENCE_STAMP = "revision_sequence"
# The keys a re-judged assessment is matched on (engine/revisions.py Link.column).
KEY_COLUMNS = ("email_canonical", "email_domain", "local_template", "phone_e164", "phone_block", "ip", "ip_network",
               "asn", "device_id", "payment_fingerprint")


@dataclass(frozen=True)
class NewRevision:
    assessment_id: str
    external_id: str | None
    previous_verdict: str
    verdict: str
    reasons: list[dict[str, Any]]
    cause_kind: str
    cause_ref: str


def policy_in_force(*, session: Session) -> Policy:
    row = current_policy(session=session)
    if row is None:
        raise RuntimeError("the database holds no policy yet; run `verify db upgrade`")
    return parse_policy(row.body, version=row.version, base_points=default_points())


# -- jobs ------------------------------------------------------------------------------------

def job_values(evidence: Evidence | None, *, cause_kind: str, cause_ref: str, source_id: str | None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of one queued job: the evidence that causes it and what to re-judge."""
    payload = {**(evidence_document(evidence) if evidence else {}), **(extra or {})}
    return {"cause_kind": cause_kind, "cause_ref": cause_ref[:400], "source_id": source_id, "payload": payload,
            "after_seq": 0, "attempts": 0, "created_at": utcnow()}


def enqueue_job(evidence: Evidence | None, *, cause_kind: str, cause_ref: str, source_id: str | None,
                extra: dict[str, Any] | None = None, session: Session) -> RevisionJob:
    """Queue re-judging work in the caller's transaction, beside the evidence that causes it."""
    row = RevisionJob(**job_values(evidence, cause_kind=cause_kind, cause_ref=cause_ref, source_id=source_id, extra=extra))
    session.add(row)
    session.flush()
    return row


INSERT_JOB = (
    "INSERT INTO revision_jobs (cause_kind, cause_ref, source_id, payload, after_seq, attempts, created_at) "
    "VALUES (:cause_kind, :cause_ref, :source_id, :payload, :after_seq, :attempts, :created_at)"
)


def enqueue_feedback(assessment: Assessment, *, label: str, source: str, session: Session) -> None:
    """A person labelled an assessment: queue the re-judging it causes (same transaction as the feedback)."""
    if label == "legitimate":
        enqueue_job(None, cause_kind="feedback", cause_ref=assessment.id, source_id=assessment.id,
                    extra={"label": "legitimate"}, session=session)
        return
    labelled = StoredAssessment(
        id=assessment.id, occurred_at=assessment.occurred_at,
        keys={name: getattr(assessment, name) for name in KEY_COLUMNS},
        signals=assessment.signals, reasons=assessment.reasons, verdict=assessment.verdict,
    )
    evidence = fraud_label_evidence(
        labelled, limits=policy_in_force(session=session).limits,
        shared_domain=history.domain_is_shared(assessment.signals), label_source=source,
    )
    enqueue_job(evidence, cause_kind="feedback", cause_ref=assessment.id, source_id=assessment.id,
                extra={"label": "fraud"}, session=session)


def cluster_jobs(assessment: Any, policy: Policy) -> list[dict[str, Any]]:
    """The new assessment made a key's cluster reach its `cluster_*` limit: the jobs that re-judge its earlier members."""
    jobs = []
    for key in crossed_limits(assessment.signals, policy.limits):
        value = getattr(assessment, CLUSTER_LIMITS[key][1])
        if value is None:
            continue
        evidence = cluster_evidence(key, value, at=assessment.occurred_at, source_id=assessment.id, limits=policy.limits)
        jobs.append(job_values(evidence, cause_kind="cluster", cause_ref=assessment.id, source_id=assessment.id))
    return jobs


# A job's links name at most this many list values, so that its query stays a short IN list.
LIST_VALUES_PER_JOB = 500


def _job_chunks(kind: str, values: Sequence[str]) -> Iterator[list[str]]:
    """Values in groups whose keys stay a short IN list: an IP network counts as the keys it covers."""
    chunk: list[str] = []
    size = 0
    for value in values:
        weight = len(keys[1]) if kind == "ip" and (keys := ip_keys(value)) is not None else 1
        if chunk and size + weight > LIST_VALUES_PER_JOB:
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += weight
    if chunk:
        yield chunk


def enqueue_list_entries(list_def: ListDef, values: Sequence[str], *, session: Session) -> None:
    """A deny list took new values: queue re-judging the stored assessments they match (same transaction)."""
    if list_def.action != "deny" or not values:
        return
    limits = policy_in_force(session=session).limits
    now = utcnow()
    for chunk in _job_chunks(list_def.kind, values):
        evidence = list_evidence(list_def.name, list_def.kind, chunk, now=now, limits=limits)
        if evidence is not None:
            ref = f"{list_def.name}:{chunk[0]}" if len(chunk) == 1 else list_def.name
            enqueue_job(evidence, cause_kind="list", cause_ref=ref, source_id=None, session=session)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """Unfinished, not set aside, and not waiting to be tried again after a failure."""
    return sa.and_(
        col(RevisionJob.done_at).is_(None), col(RevisionJob.failed_at).is_(None),
        sa.or_(col(RevisionJob.retry_at).is_(None), col(RevisionJob.retry_at) <= now),
    )


def claim_jobs(*, now: datetime, limit: int, session: Session) -> list[RevisionJob]:
    """PostgreSQL: the oldest due jobs, up to `limit`, locked by this transaction (`FOR UPDATE
    SKIP LOCKED`, so that several workers take different jobs)."""
    return list(session.exec(
        select(RevisionJob).where(_due(now)).order_by(col(RevisionJob.id)).limit(limit).with_for_update(skip_locked=True)
    ))


def oldest_jobs(*, now: datetime, limit: int, session: Session) -> list[RevisionJob]:
    """SQLite: the oldest due jobs, up to `limit`, read without a lock (see `advance_seen_job`)."""
    return list(session.exec(select(RevisionJob).where(_due(now)).order_by(col(RevisionJob.id)).limit(limit)))


@dataclass(frozen=True)
class SeenJob:
    """A job as a pass read it (SQLite): enough to write its batch later without reading it again."""

    id: int
    attempts: int  # its version: every batch written moves it
    payload: dict[str, Any]
    cause_kind: str
    cause_ref: str

    @classmethod
    def of(cls, job: RevisionJob) -> SeenJob:
        return cls(job.id, job.attempts, dict(job.payload), job.cause_kind, job.cause_ref)


# One statement text for every job, run through the driver: the drain holds SQLite's write lock
# while it moves its jobs on, and every signup's commit waits behind it (see advance_seen_job).
ADVANCE_SEEN_JOB = (
    "UPDATE revision_jobs SET attempts = attempts + 1, done_at = :done_at, payload = coalesce(:payload, payload), "
    "after_seq = coalesce(:after_seq, after_seq) WHERE id = :id AND attempts = :attempts AND done_at IS NULL"
)


def advance_seen_job(seen: SeenJob, position: Position | None, *, session: Session) -> bool:
    """SQLite: take the write lock and move the job on (None: mark it done), in one statement, if
    it is still as the pass read it; False when another drainer moved or finished it meanwhile.

    Plain SQL through the driver, not a Core update built per job: the drain runs niced, and
    building and compiling 25 updates kept the lock 6 ms a pass under a campaign (the group
    writer waiting, and the signups' p99 with it, 53 ms against 34 with the drain off)."""
    driver = Driver.of_session(session)
    moved = {"done_at": None, "payload": None, "after_seq": None, **moved_on(seen.payload, position)}
    if moved["payload"] is not None:
        moved["payload"] = json_text(moved["payload"])
    params = {"id": seen.id, "attempts": seen.attempts, **moved}
    return driver.connection.execute(ADVANCE_SEEN_JOB, driver.bind(params)).rowcount == 1


def _link_condition(link: Link) -> sa.ColumnElement[bool]:
    column = ASSESSMENT[link.column]
    if link.match == "prefix":
        matched = sa.or_(*(column.startswith(str(value), autoescape=True) for value in link.values))
    elif link.match == "domain":
        matched = sa.or_(column.in_(link.values), *(column.endswith("." + str(value), autoescape=True) for value in link.values))
    else:
        matched = column.in_(link.values)
    return sa.and_(matched, ASSESSMENT.occurred_at >= link.since, ASSESSMENT.occurred_at < link.until)


@dataclass(frozen=True)
class Position:
    """How far a job got: the link it is on, and the last (occurred_at, seq) done on that link."""

    link: int = 0
    occurred_at: datetime | None = None
    seq: int = 0

    def document(self) -> dict[str, Any]:
        return {"link": self.link, "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None, "seq": self.seq}

    @classmethod
    def of(cls, document: dict[str, Any] | None) -> "Position":
        if not document:
            return cls()
        at = document.get("occurred_at")
        return cls(document["link"], datetime.fromisoformat(at) if at else None, int(document.get("seq") or 0))


def linked_assessments(evidence: Evidence, position: Position, *, limit: int, session: Session) -> tuple[list[sa.Row], Position | None]:
    """The next at most `limit` assessments the evidence reaches (without their signals), and the position after them (None: done).

    One link at a time, in (occurred_at, seq) order on its `(key, occurred_at)` index, so that a
    batch costs what it reads however large the table or the cluster is.
    """
    found: list[sa.Row] = []
    while position.link < len(evidence.links):
        link = evidence.links[position.link]
        query = (
            sa.select(ASSESSMENT.seq, ASSESSMENT.id, ASSESSMENT.external_id, ASSESSMENT.occurred_at, ASSESSMENT.verdict,
                      ASSESSMENT.reasons, *(ASSESSMENT[name] for name in KEY_COLUMNS))
            .where(_link_condition(link))
            .order_by(ASSESSMENT.occurred_at, ASSESSMENT.seq)
            .limit(limit - len(found))
        )
        if position.occurred_at is not None:
            query = query.where(sa.or_(
                ASSESSMENT.occurred_at > position.occurred_at,
                sa.and_(ASSESSMENT.occurred_at == position.occurred_at, ASSESSMENT.seq > position.seq),
            ))
        rows = list(session.execute(query))
        found += rows
        if len(found) == limit:  # this link may hold more: go on from its last row next time
            return found, Position(position.link, rows[-1].occurred_at, rows[-1].seq)
        position = Position(position.link + 1)
    return found, None


def signals_of(ids: Sequence[str], *, session: Session) -> dict[str, dict]:
    """The stored signals of these assessments (read only for those worth re-judging: they are the bulk of a row)."""
    if not ids:
        return {}
    return dict(session.execute(sa.select(ASSESSMENT.id, ASSESSMENT.signals).where(ASSESSMENT.id.in_(list(ids)))).all())


def assessment_rows(ids: Sequence[str], *, session: Session) -> list[sa.Row]:
    """The same columns as linked_assessments, and the signals, for named assessments."""
    return list(session.execute(
        sa.select(ASSESSMENT.seq, ASSESSMENT.id, ASSESSMENT.external_id, ASSESSMENT.occurred_at, ASSESSMENT.verdict,
                  ASSESSMENT.reasons, ASSESSMENT.signals, *(ASSESSMENT[name] for name in KEY_COLUMNS))
        .where(ASSESSMENT.id.in_(list(ids)))
    ))


def current_verdicts(ids: Iterable[str], *, session: Session) -> dict[str, str]:
    """The latest revision's verdict per assessment, for those that have one."""
    ids = list(ids)
    if not ids:
        return {}
    revisions = Revision.__table__.c
    latest = (
        sa.select(revisions.assessment_id, sa.func.max(revisions.sequence).label("sequence"))
        .where(revisions.assessment_id.in_(ids)).group_by(revisions.assessment_id).subquery()
    )
    rows = session.execute(
        sa.select(revisions.assessment_id, revisions.verdict)
        .join(latest, sa.and_(revisions.assessment_id == latest.c.assessment_id, revisions.sequence == latest.c.sequence))
    )
    return dict(rows.all())


def vouched_for(ids: Iterable[str], *, session: Session) -> set[str]:
    """The assessments whose latest feedback from a person is `legitimate`: inference does not overrule it."""
    ids = list(ids)
    if not ids:
        return set()
    feedback = Feedback.__table__.c
    latest = (
        sa.select(feedback.assessment_id, sa.func.max(feedback.id).label("id"))
        .where(feedback.assessment_id.in_(ids)).group_by(feedback.assessment_id).subquery()
    )
    rows = session.execute(
        sa.select(feedback.assessment_id).join(latest, feedback.id == latest.c.id).where(feedback.label == "legitimate")
    )
    return set(rows.scalars())


def moved_on(payload: dict[str, Any], position: Position | None) -> dict[str, Any]:
    """The columns of a job moved on to `position`: how far it got, or (None) done."""
    if position is None:
        return {"done_at": utcnow()}
    return {"payload": {**payload, "position": position.document()}, "after_seq": position.seq}


def advance_job(job: RevisionJob, position: Position | None, *, session: Session) -> None:
    """Keep how far the job got; None marks it done."""
    for column, value in moved_on(job.payload, position).items():
        setattr(job, column, value)
    session.add(job)


def due_jobs(*, now: datetime, session: Session) -> int:
    """Jobs to do now: not those waiting to be tried again after a failure, nor those set aside."""
    return session.execute(sa.select(sa.func.count()).select_from(RevisionJob).where(_due(now))).scalar_one()


def _failing() -> sa.ColumnElement[bool]:
    """Unfinished, and its last batch failed: waiting to be tried again, or set aside."""
    return sa.and_(col(RevisionJob.done_at).is_(None), RevisionJob.failures > 0)


def failing_jobs(*, session: Session) -> int:
    """How many unfinished jobs' last batch failed."""
    return session.execute(sa.select(sa.func.count()).select_from(RevisionJob).where(_failing())).scalar_one()


def set_back_job(job: RevisionJob, error: str, *, retry_in: timedelta | None, now: datetime, session: Session) -> None:
    """Count a failed batch against the job: tried again after `retry_in`, or set aside when None."""
    job.failures += 1
    job.last_error = error[:500]
    job.retry_at = None if retry_in is None else now + retry_in
    job.failed_at = now if retry_in is None else None
    session.add(job)


def failing_job_rows(*, session: Session) -> list[RevisionJob]:
    """Unfinished jobs whose last batch failed, set aside or waiting to be tried again, oldest first."""
    return list(session.exec(select(RevisionJob).where(_failing()).order_by(col(RevisionJob.id))))


def requeue_jobs(job_ids: Sequence[int] | None = None, *, actor: str, session: Session) -> list[int]:
    """Put set-aside jobs (all, or those named) back in the queue, their failures forgotten
    (the last error is kept); audited. The ids re-queued."""
    jobs = [job for job in failing_job_rows(session=session)
            if job.failed_at is not None and (job_ids is None or job.id in job_ids)]
    for job in jobs:
        job.failures, job.retry_at, job.failed_at = 0, None, None
        session.add(job)
    ids = [job.id for job in jobs]
    if ids:
        record_audit(actor, "revision_job.requeue", target=",".join(map(str, ids))[:200], detail={"ids": ids}, session=session)
    return ids


# -- revisions -------------------------------------------------------------------------------

def _take_sequences(count: int, *, session: Session) -> int:
    """Reserve `count` sequences under the stamp's row lock (held to commit); return the first."""
    stamps = Stamp.__table__.c
    last = session.execute(
        sa.update(Stamp.__table__).where(stamps.name == SEQUENCE_STAMP).values(value=stamps.value + count).returning(stamps.value)
    ).scalar()
    if last is None:  # a database made before the migration seeded the stamp
        top = session.execute(sa.select(sa.func.coalesce(sa.func.max(Revision.sequence), 0))).scalar_one()
        session.add(Stamp(name=SEQUENCE_STAMP, value=top + count))
        session.flush()
        last = top + count
    return last - count + 1


def record_revisions(session: Session, revisions: Sequence[NewRevision], *, now: datetime | None = None) -> list[Revision]:
    """Store revisions in feed order, in the caller's transaction; the one place revisions are written."""
    if not revisions:
        return []
    # Under the counter's lock no other writer can add a revision: drop those whose assessment
    # another worker revised since this one read it (two jobs reaching one assessment at once).
    stamps = Stamp.__table__.c
    session.execute(sa.update(Stamp.__table__).where(stamps.name == SEQUENCE_STAMP).values(value=stamps.value))
    current = current_verdicts([item.assessment_id for item in revisions], session=session)
    revisions = [item for item in revisions if current.get(item.assessment_id, item.previous_verdict) == item.previous_verdict]
    if not revisions:
        return []
    first = _take_sequences(len(revisions), session=session)
    at = now or utcnow()
    rows = [
        Revision(
            sequence=first + offset, id=str(uuid.uuid4()), assessment_id=item.assessment_id, external_id=item.external_id,
            previous_verdict=item.previous_verdict, verdict=item.verdict, reasons=item.reasons,
            cause_kind=item.cause_kind, cause_ref=item.cause_ref, created_at=at,
        )
        for offset, item in enumerate(revisions)
    ]
    session.execute(sa.insert(Revision.__table__), [row.model_dump() for row in rows])
    # The webhook deliveries are written in this same transaction: a revision is never recorded
    # without them, nor they without it.
    enqueue_events(session, REVISION_CREATED, [revision_document(row) for row in rows], now=at)
    return rows


def revision_document(row: Revision) -> dict[str, Any]:
    """A revision as the feed, the assessment and a webhook show it."""
    return {
        "id": row.id,
        "sequence": row.sequence,
        "assessment_id": row.assessment_id,
        "external_id": row.external_id,
        "previous_verdict": row.previous_verdict,
        "verdict": row.verdict,
        "reasons": row.reasons,
        "cause": {"kind": row.cause_kind, "ref": row.cause_ref},
        "created_at": row.created_at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def revisions_after(sequence: int, *, limit: int, session: Session) -> list[Revision]:
    """The feed: revisions with a larger sequence, in order."""
    return list(session.exec(
        select(Revision).where(Revision.sequence > sequence).order_by(col(Revision.sequence)).limit(limit)
    ))


def revisions_of(assessment_id: str, *, session: Session) -> list[Revision]:
    """One assessment's revisions, oldest first."""
    return list(session.exec(
        select(Revision).where(Revision.assessment_id == assessment_id).order_by(col(Revision.sequence))
    ))


def recent_revisions(last: int, *, session: Session) -> list[sa.Row]:
    """The last `last` revisions with their assessment's stored signals (policy simulation)."""
    revisions = Revision.__table__.c
    return list(session.execute(
        sa.select(revisions.assessment_id, revisions.previous_verdict, revisions.verdict, revisions.reasons, ASSESSMENT.signals)
        .join(Assessment.__table__, ASSESSMENT.id == revisions.assessment_id)
        .order_by(revisions.sequence.desc())
        .limit(last)
    ))


def delete_revisions_of(ids: Sequence[str], *, session: Session) -> None:
    """Erasure and retention: the revisions of these assessments, and the jobs their evidence queued."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        session.execute(sa.delete(Revision).where(col(Revision.assessment_id).in_(chunk)))
        session.execute(sa.delete(RevisionJob).where(col(RevisionJob.source_id).in_(chunk)))
