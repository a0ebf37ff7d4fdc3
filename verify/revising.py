"""Revising earlier verdicts: drain the queued re-judging jobs in bounded batches.

Evidence (a fraud or legitimate label, a new deny-list entry, a cluster reaching a limit)
queues a job in its own transaction; `run_due` takes one job at a time, re-judges at most
`batch` linked assessments in one short transaction, records the revisions and moves the job's
cursor, so a cluster of 100,000 members is revised in 100,000 / batch steps, never inside a
request, and an assessment never waits behind more than one batch. `verify worker` calls it in
its loop; `verify serve` on SQLite drains in a thread of each worker (`Drain`).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from verify.engine import revisions as judging
from verify.store.database import Database
from verify.store.models import RevisionJob
from verify.store.revisions import (
    KEY_COLUMNS,
    NewRevision,
    Position,
    advance_job,
    assessment_rows,
    claim_job,
    current_verdicts,
    linked_assessments,
    pending_jobs,
    policy_in_force,
    record_revisions,
    signals_of,
    vouched_for,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
DRAIN_INTERVAL = 2.0  # seconds between looks for queued jobs in a serve worker


def stored_assessment(row, verdict: str, signals: dict | None = None) -> judging.StoredAssessment:
    return judging.StoredAssessment(
        id=row.id, occurred_at=row.occurred_at, keys={name: getattr(row, name) for name in KEY_COLUMNS},
        signals=row.signals if signals is None else signals, reasons=row.reasons, verdict=verdict,
    )


def step(job: RevisionJob, *, batch: int, session) -> tuple[list, bool]:
    """Re-judge the job's next batch; return the revisions to record and whether the job is done."""
    payload = job.payload
    if payload.get("label") == "legitimate":  # a person vouched for this one assessment
        rows = assessment_rows([job.source_id], session=session) if job.source_id else []
        found = []
        for row in rows:
            outcome = judging.legitimate(current_verdicts([row.id], session=session).get(row.id, row.verdict))
            if outcome:
                found.append((row, outcome))
        advance_job(job, None, session=session)
        return found, True
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
    advance_job(job, position, session=session)
    return found, position is None


def run_due(database: Database, *, batch: int = DEFAULT_BATCH, max_batches: int = 50, now: datetime | None = None) -> int:
    """Work through queued jobs, one batch per transaction, until none is left or `max_batches` ran; return revisions recorded."""
    recorded = 0
    for _ in range(max_batches):
        with database.transaction() as session:
            job = claim_job(session=session)
            if job is None:
                break
            found, _done = step(job, batch=batch, session=session)
            revisions = [
                NewRevision(
                    assessment_id=row.id, external_id=row.external_id, previous_verdict=outcome.previous_verdict,
                    verdict=outcome.verdict, reasons=[reason.as_dict() for reason in outcome.reasons],
                    cause_kind=job.cause_kind, cause_ref=job.cause_ref,
                )
                for row, outcome in found
            ]
            recorded += len(record_revisions(session, revisions, now=now or datetime.now(timezone.utc)))
    return recorded


def pending_revision_jobs(database: Database) -> int:
    with database.transaction() as session:
        return pending_jobs(session=session)


class Drain:
    """A daemon thread that runs `run_due` every `interval` seconds: the embedded default's worker."""

    def __init__(self, database: Database, *, interval: float | None = None) -> None:
        self.database = database
        self.interval = DRAIN_INTERVAL if interval is None else interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="verify-revisions", daemon=True)

    def start(self) -> "Drain":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                run_due(self.database)
            except Exception:  # the thread must outlive a database outage; the next round retries
                log.exception("revisions: a batch failed; trying again in %g s", self.interval)
