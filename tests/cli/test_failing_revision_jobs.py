"""A revision job whose batch keeps failing is tried again later, then set aside, and never
holds up the jobs queued after it; `verify revisions list` shows it, `retry` re-queues it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.cli.test_revisions_worker import queue_a_revision, revised, run  # noqa: F401 (run is a fixture)
from tests.test_metrics import samples, value
from verify import revising
from verify.revising import FIRST_JOB_RETRY, MAX_JOB_FAILURES, due_revision_jobs, run_due
from verify.store.audit import AuditFilter, audit_page
from verify.store.models import RevisionJob
from verify.store.revisions import job_values

# Evidence as a release with another date format might have queued it: the judge cannot read it.
UNREADABLE = {
    "code": "cluster.fraud_label",
    "links": [{"column": "device_id", "values": ["dev-w"], "since": "last tuesday", "until": "now", "detail": "shares a device"}],
}


def queue_unreadable_job(services) -> int:
    with services.database.transaction() as session:
        job = RevisionJob(**job_values(None, cause_kind="feedback", cause_ref="older-release", source_id=None, extra=UNREADABLE))
        session.add(job)
        session.flush()
        return job.id


def job(services, job_id: int) -> RevisionJob:
    with services.database.transaction() as session:
        return session.get(RevisionJob, job_id)


def failures(client) -> dict[str, float]:
    found = samples(client)
    return {outcome: value(found, "verify_revision_job_failures_total", outcome=outcome) for outcome in ("retried", "set_aside")}


def test_a_failing_job_is_retried_later_and_holds_up_no_other(services, client, assess_headers, admin_headers, caplog):
    poison = queue_unreadable_job(services)  # the oldest: taken first
    ids = queue_a_revision(client, assess_headers, admin_headers)
    now = datetime.now(timezone.utc)
    before = failures(client)
    with caplog.at_level(logging.WARNING, logger="verify.revising"):
        assert run_due(services.database, now=now) == 2
    assert failures(client) == {"retried": before["retried"] + 1, "set_aside": before["set_aside"]}  # what alerts watch
    assert sorted(revised(services)) == sorted(ids)  # the job behind it was done
    failed = job(services, poison)
    assert (failed.failures, failed.done_at, failed.failed_at) == (1, None, None)
    assert failed.retry_at == now + FIRST_JOB_RETRY and failed.last_error.startswith("ValueError: ")
    assert f"a batch of job {poison} failed (1 of {MAX_JOB_FAILURES})" in caplog.text
    assert due_revision_jobs(services.database) == 0  # waiting: `worker --once` does not spin on it
    assert run_due(services.database, now=now + FIRST_JOB_RETRY / 2) == 0 and job(services, poison).failures == 1


def test_a_job_that_keeps_failing_is_set_aside_then_requeued_by_the_cli(services, client, run, caplog):  # noqa: F811
    poison = queue_unreadable_job(services)
    now = datetime.now(timezone.utc)
    before = failures(client)
    delays = []
    with caplog.at_level(logging.ERROR, logger="verify.revising"):
        for _ in range(MAX_JOB_FAILURES):
            run_due(services.database, now=now)
            row = job(services, poison)
            if row.retry_at:
                delays.append(row.retry_at - now)
                now = row.retry_at
    assert delays == [FIRST_JOB_RETRY * 2 ** n for n in range(MAX_JOB_FAILURES - 1)]  # each wait twice the last
    row = job(services, poison)
    assert (row.failures, row.retry_at, row.done_at) == (MAX_JOB_FAILURES, None, None) and row.failed_at == now
    assert f"job {poison} set aside after {MAX_JOB_FAILURES} failed batches" in caplog.text
    assert failures(client) == {"retried": before["retried"] + MAX_JOB_FAILURES - 1, "set_aside": before["set_aside"] + 1}
    assert run_due(services.database, now=now + timedelta(days=30)) == 0 and job(services, poison).failures == MAX_JOB_FAILURES

    listed = run("revisions", "list")
    assert listed.exit_code == 0
    assert listed.stdout.startswith(f"{poison}\tfeedback:older-release\t{MAX_JOB_FAILURES} failures\tset aside ")
    assert "ValueError" in listed.stdout
    once = run("worker", "--once")  # cron sees it in the status
    assert once.exit_code == 1 and "1 job(s) failing" in once.stderr

    assert run("revisions", "retry", "999999").exit_code == 1  # not a set-aside job
    retried = run("revisions", "retry", str(poison))
    assert retried.exit_code == 0 and retried.stdout.strip() == f"re-queued 1 job(s): {poison}"
    row = job(services, poison)
    assert (row.failures, row.failed_at, row.retry_at) == (0, None, None) and row.last_error.startswith("ValueError")
    with services.database.transaction() as session:
        [event] = audit_page(limit=10, filters=AuditFilter(action="revision_job.requeue"), session=session)
    assert (event.actor, event.target) == ("cli", str(poison))
    assert run("revisions", "retry").stdout.strip() == "no set-aside job to re-queue"


def test_a_database_error_is_no_fault_of_the_job(services, client, assess_headers, admin_headers, monkeypatch):
    """An unreachable or locked database ends the round and is tried again, counting against no job."""
    queue_a_revision(client, assess_headers, admin_headers)

    def database_gone(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(revising, "step", database_gone)
    with pytest.raises(sa.exc.OperationalError):
        run_due(services.database)
    with services.database.transaction() as session:
        [row] = session.query(RevisionJob).all()
    assert (row.failures, row.retry_at, row.failed_at) == (0, None, None)
