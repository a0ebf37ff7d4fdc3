"""Revising earlier verdicts: drain the queued re-judging jobs in bounded batches.

Evidence (a fraud or legitimate label, a new deny-list entry, a cluster reaching a limit)
queues a job in its own transaction; `run_due` takes one job at a time, re-judges at most
`batch` linked assessments, records the revisions and moves the job's cursor, so a cluster of
100,000 members is revised in 100,000 / batch steps, never inside a request.

How a batch holds the database differs. PostgreSQL locks the job's row (other workers take
other jobs) and nothing else: signups are not held up. SQLite has one write lock, and every
signup's commit waits behind it: a batch there is read and re-judged with no lock, then
written in a short transaction that first checks no other drainer moved the job meanwhile
(holding the lock for the whole batch stalled every signup for 100 to 400 ms under a campaign).

`verify worker` calls `run_due` in its loop; `verify serve` runs `run_drain_child` in a child of
its arbiter (VERIFY_SERVE_REVISIONS).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from verify.engine import revisions as judging
from verify.children import stop_event
from verify.settings import Settings
from verify.store.database import Database
from verify.store.models import RevisionJob
from verify.store.revisions import (
    KEY_COLUMNS,
    NewRevision,
    Position,
    advance_job,
    assessment_rows,
    claim_job,
    claim_seen_job,
    current_verdicts,
    linked_assessments,
    oldest_job,
    pending_jobs,
    policy_in_force,
    record_revisions,
    signals_of,
    vouched_for,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
DRAIN_INTERVAL = 2.0  # seconds between looks for queued jobs in `verify serve`
# Below the web workers: a batch re-judges up to `batch` assessments at once, and at equal
# priority it took a whole core from them for tens of milliseconds under a campaign.
DRAIN_NICENESS = 10


def stored_assessment(row, verdict: str, signals: dict | None = None) -> judging.StoredAssessment:
    return judging.StoredAssessment(
        id=row.id, occurred_at=row.occurred_at, keys={name: getattr(row, name) for name in KEY_COLUMNS},
        signals=row.signals if signals is None else signals, reasons=row.reasons, verdict=verdict,
    )


def step(job: RevisionJob, *, batch: int, session) -> tuple[list, Position | None]:
    """Re-judge the job's next batch, writing nothing; return the revisions to record and the
    job's next position (None: done)."""
    payload = job.payload
    if payload.get("label") == "legitimate":  # a person vouched for this one assessment
        rows = assessment_rows([job.source_id], session=session) if job.source_id else []
        found = []
        for row in rows:
            outcome = judging.legitimate(current_verdicts([row.id], session=session).get(row.id, row.verdict))
            if outcome:
                found.append((row, outcome))
        return found, None
    evidence = judging.evidence_from_document(payload)
    rows, position = linked_assessments(evidence, Position.of(payload.get("position")), limit=batch, session=session)
    # Most rows a weak link reaches stay as they are: sift them on keys and reasons before reading more.
    # One assessment reached by two links of one batch is judged once (by all the links that reach it).
    seen: set[str] = set()
    rows = [row for row in rows if not (row.id in seen or seen.add(row.id))]
    rows = [row for row in rows if judging.usable_links(stored_assessment(row, row.verdict, {}), evidence)]
    ids = [row.id for row in rows]
    current, vouched = current_verdicts(ids, session=session), vouched_for(ids, session=session)
    signals = signals_of([row.id for row in rows if row.id not in vouched], session=session)
    policy = policy_in_force(session=session) if signals else None
    found = []
    for row in rows:
        if row.id not in signals:
            continue
        outcome = judging.rejudge(stored_assessment(row, current.get(row.id, row.verdict), signals[row.id]), evidence, policy)
        if outcome:
            found.append((row, outcome))
    return found, position


def run_due(database: Database, *, batch: int = DEFAULT_BATCH, max_batches: int = 50, now: datetime | None = None) -> int:
    """Work through queued jobs, one batch at a time, until none is left or `max_batches` ran; return revisions recorded."""
    one_batch = _batch_in_locked_job if database.dialect == "postgresql" else _batch_then_short_write
    recorded = 0
    for _ in range(max_batches):
        done = one_batch(database, batch=batch, now=now or datetime.now(timezone.utc))
        if done is None:
            break
        recorded += done
    return recorded


def _batch_in_locked_job(database: Database, *, batch: int, now: datetime) -> int | None:
    """PostgreSQL: claim, judge and write in one transaction, holding only the job's row."""
    with database.transaction() as session:
        job = claim_job(session=session)
        if job is None:
            return None
        found, position = step(job, batch=batch, session=session)
        return _write_batch(job, found, position, session=session, now=now)


def _batch_then_short_write(database: Database, *, batch: int, now: datetime) -> int | None:
    """SQLite: read and judge the oldest job's next batch with no lock held, then write it in a
    short transaction, unless another drainer moved the job meanwhile (then it is read again)."""
    with database.transaction() as session:  # reads only: SQLite takes no write lock
        job = oldest_job(session=session)
        if job is None:
            return None
        seen = (job.id, job.attempts)
        found, position = step(job, batch=batch, session=session)
    with database.transaction() as session:
        job = claim_seen_job(*seen, session=session)
        return 0 if job is None else _write_batch(job, found, position, session=session, now=now)


def _write_batch(job: RevisionJob, found: list, position: Position | None, *, session, now: datetime) -> int:
    """Record a judged batch's revisions and move the job on; the number recorded."""
    advance_job(job, position, session=session)
    revisions = [
        NewRevision(
            assessment_id=row.id, external_id=row.external_id, previous_verdict=outcome.previous_verdict,
            verdict=outcome.verdict, reasons=[reason.as_dict() for reason in outcome.reasons],
            cause_kind=job.cause_kind, cause_ref=job.cause_ref,
        )
        for row, outcome in found
    ]
    return len(record_revisions(session, revisions, now=now))


def pending_revision_jobs(database: Database) -> int:
    with database.transaction() as session:
        return pending_jobs(session=session)


def run_drain_child(settings: Settings, *, parent_pid: int) -> None:
    """`verify serve`'s drain: `run_due` every DRAIN_INTERVAL seconds in a process forked from
    gunicorn's arbiter, until told to stop or the arbiter is gone. A process of its own, not a
    thread in each web worker: re-judging a batch took the worker's GIL from its requests."""
    stop = stop_event()
    os.nice(DRAIN_NICENESS)
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        while not stop.wait(DRAIN_INTERVAL) and os.getppid() == parent_pid:
            try:
                run_due(database)
            except Exception:  # noqa: BLE001 (the loop must outlive a database outage; the next round retries)
                log.exception("revisions: a batch failed; trying again in %g s", DRAIN_INTERVAL)
    finally:
        database.dispose()
