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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from verify import metrics
from verify.engine import revisions as judging
from verify.children import stop_event
from verify.settings import Settings
from verify.store.database import Database
from verify.store.models import RevisionJob
from verify.store.revisions import (
    KEY_COLUMNS,
    NewRevision,
    Position,
    SeenJob,
    advance_job,
    advance_seen_job,
    assessment_rows,
    claim_jobs,
    current_verdicts,
    due_jobs,
    failing_jobs,
    linked_assessments,
    oldest_jobs,
    policy_in_force,
    record_revisions,
    set_back_job,
    signals_of,
    vouched_for,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
# Jobs judged in one pass (one read and a short write per job on SQLite, one transaction on
# PostgreSQL): a campaign queues hundreds of small jobs (each number reaching its limit
# re-judges two or three earlier signups), and a pass per job cost about 4 ms of CPU each.
JOBS_PER_PASS = 25
DRAIN_INTERVAL = 2.0  # seconds between looks for queued jobs in `verify serve`
# Below the web workers: a batch re-judges up to `batch` assessments at once, and at equal
# priority it took a whole core from them for tens of milliseconds under a campaign.
DRAIN_NICENESS = 10
# Between two passes of a round: a campaign queues jobs without pause, and passes run back to
# back took the CPU and SQLite's write lock for 100 to 200 ms every DRAIN_INTERVAL (the
# signups' p99 35 to 36 ms with this pause, 45 to 46 without). At 25 jobs a pass the drain
# still keeps up with hundreds of jobs a second; a campaign of 400 signups a second queues 66.
DRAIN_PASS_PAUSE = 0.02
# A job whose batch raised is tried again later, each time twice as late, and set aside after
# this many failures in a row (`verify revisions retry` re-queues it): being the oldest, it
# would otherwise be taken first on every round and hold up every job queued after it.
MAX_JOB_FAILURES = 5
FIRST_JOB_RETRY = timedelta(seconds=30)
# The database being unreachable or busy is no fault of the job: such errors end the round
# (the drain tries again) without counting against it.
TRANSIENT_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
# The attribute by which a batch's error names the job it is blamed on (see `_blamed_on`).
BLAMED_JOB = "revision_job_id"


def stored_assessment(row, verdict: str, signals: dict | None = None) -> judging.StoredAssessment:
    return judging.StoredAssessment(
        id=row.id, occurred_at=row.occurred_at, keys={name: getattr(row, name) for name in KEY_COLUMNS},
        signals=row.signals if signals is None else signals, reasons=row.reasons, verdict=verdict,
    )


def step(job: RevisionJob, *, batch: int, session, revised: dict[str, str] | None = None) -> tuple[list, Position | None]:
    """Re-judge the job's next batch, writing nothing; return the revisions to record and the
    job's next position (None: done). `revised`: verdicts that jobs judged earlier in the same
    pass gave and that are not written yet (they are judged on, as if written)."""
    payload = job.payload
    revised = revised or {}
    if payload.get("label") == "legitimate":  # a person vouched for this one assessment
        rows = assessment_rows([job.source_id], session=session) if job.source_id else []
        found = []
        for row in rows:
            outcome = judging.legitimate(revised.get(row.id) or current_verdicts([row.id], session=session).get(row.id, row.verdict))
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
    current, vouched = {**current_verdicts(ids, session=session), **revised}, vouched_for(ids, session=session)
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


def run_due(database: Database, *, batch: int = DEFAULT_BATCH, max_batches: int = 50, now: datetime | None = None,
            pause: Callable[[], bool] | None = None) -> int:
    """Work through due jobs, a pass at a time (up to JOBS_PER_PASS jobs, one batch of each),
    until none is left or `max_batches` passes ran; return revisions recorded. `pause` is
    called between passes that found work; when it returns True the round ends there."""
    one_pass = _pass_in_locked_jobs if database.dialect == "postgresql" else _pass_then_short_write
    recorded = 0
    for _ in range(max_batches):
        at = now or datetime.now(timezone.utc)
        try:
            done = one_pass(database, batch=batch, now=at)
        except Exception as error:
            if getattr(error, BLAMED_JOB, None) is None:
                raise
            _set_back(database, getattr(error, BLAMED_JOB), error, now=at)
            continue
        if done is None:
            break
        recorded += done
        if pause is not None and pause():
            break
    return recorded


def _set_back(database: Database, job_id: int, cause: Exception, *, now: datetime) -> None:
    """Count the failure against its job (its transaction was rolled back): retried later, or set aside."""
    error = f"{type(cause).__name__}: {cause}"
    with database.transaction() as session:
        job = session.get(RevisionJob, job_id)
        if job is None or job.done_at is not None:  # erased or finished meanwhile
            return
        failures = job.failures + 1
        retry_in = FIRST_JOB_RETRY * 2 ** (failures - 1) if failures < MAX_JOB_FAILURES else None
        set_back_job(job, error, retry_in=retry_in, now=now, session=session)
    metrics.record_revision_job_failure(set_aside=retry_in is None)
    if retry_in is None:
        log.error("revisions: job %s set aside after %d failed batches (re-queue it with `verify revisions retry`): %s",
                  job_id, failures, error, exc_info=cause)
    else:
        log.warning("revisions: a batch of job %s failed (%d of %d); trying it again in %s: %s",
                    job_id, failures, MAX_JOB_FAILURES, retry_in, error, exc_info=cause)


def _pass_in_locked_jobs(database: Database, *, batch: int, now: datetime) -> int | None:
    """PostgreSQL: claim, judge and write in one transaction, holding only the jobs' rows."""
    with database.transaction() as session:
        jobs = claim_jobs(now=now, limit=JOBS_PER_PASS, session=session)
        if not jobs:
            return None
        recorded = 0
        for job in jobs:
            with _blamed_on(job.id):
                found, position = step(job, batch=batch, session=session)
                recorded += _write_batch(job, found, position, session=session, now=now)
            if position is not None:  # a whole batch of one job: enough for one pass
                break
        return recorded


def _pass_then_short_write(database: Database, *, batch: int, now: datetime) -> int | None:
    """SQLite: read and judge the oldest jobs' next batches with no lock held, then write them in
    short transactions, in turn, up to a job another drainer moved meanwhile (it and those after
    it are read again next pass)."""
    judged = []
    with database.transaction() as session:  # reads only: SQLite takes no write lock
        jobs = oldest_jobs(now=now, limit=JOBS_PER_PASS, session=session)
        if not jobs:
            return None
        revised: dict[str, str] = {}  # what the pass's earlier jobs made of an assessment, not yet written
        for job in jobs:
            with _blamed_on(job.id):
                found, position = step(job, batch=batch, session=session, revised=revised)
            revised.update((row.id, outcome.verdict) for row, outcome in found)
            judged.append((SeenJob.of(job), found, position))
            if position is not None:  # a whole batch of one job: enough for one pass
                break
    recorded = 0
    for group in _write_groups(judged):
        with database.transaction() as session:
            for seen, found, position in group:
                with _blamed_on(seen.id):
                    if not advance_seen_job(seen, position, session=session):
                        return recorded  # another drainer moved it: the jobs after it were judged on its outcome
                    recorded += _record(seen.cause_kind, seen.cause_ref, found, session=session, now=now)
    return recorded


def _write_groups(judged: list) -> Iterator[list]:
    """The pass's jobs in write transactions: those with nothing to record moved on together
    (a statement each), one with revisions alone. Short ones: the drain runs niced, and a
    transaction holding the write lock, and every signup's commit behind it, for a whole pass
    stalled the workers while they held the CPU."""
    quiet: list = []
    for item in judged:
        if not item[1]:
            quiet.append(item)
            continue
        if quiet:
            yield quiet
            quiet = []
        yield [item]
    if quiet:
        yield quiet


@contextmanager
def _blamed_on(job_id: int) -> Iterator[None]:
    """Errors inside name the job (BLAMED_JOB): run_due counts them against it, unless the
    database itself failed (a transient error, no fault of the job)."""
    try:
        yield
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        setattr(error, BLAMED_JOB, job_id)
        raise


def _write_batch(job: RevisionJob, found: list, position: Position | None, *, session, now: datetime) -> int:
    """Record a judged batch's revisions and move the job on; the number recorded."""
    advance_job(job, position, session=session)
    recorded = _record(job.cause_kind, job.cause_ref, found, session=session, now=now)
    session.flush()  # a write the database refuses fails here, counted against the job, not at commit
    return recorded


def _record(cause_kind: str, cause_ref: str, found: list, *, session, now: datetime) -> int:
    """Record a judged batch's revisions; the number recorded."""
    revisions = [
        NewRevision(
            assessment_id=row.id, external_id=row.external_id, previous_verdict=outcome.previous_verdict,
            verdict=outcome.verdict, reasons=[reason.as_dict() for reason in outcome.reasons],
            cause_kind=cause_kind, cause_ref=cause_ref,
        )
        for row, outcome in found
    ]
    return len(record_revisions(session, revisions, now=now))


def due_revision_jobs(database: Database) -> int:
    with database.transaction() as session:
        return due_jobs(now=datetime.now(timezone.utc), session=session)


def failing_revision_jobs(database: Database) -> int:
    with database.transaction() as session:
        return failing_jobs(session=session)


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
                run_due(database, pause=lambda: stop.wait(DRAIN_PASS_PAUSE))
            except Exception:  # noqa: BLE001 (the loop must outlive a database outage; the next round retries)
                log.exception("revisions: the round failed (a job's own failures are counted in run_due); trying again in %g s", DRAIN_INTERVAL)
    finally:
        database.dispose()
