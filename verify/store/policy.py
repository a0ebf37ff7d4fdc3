"""Policy versions, and the stored judgements a new policy is simulated against."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.errors import NotFound
from verify.store.audit import record_audit
from verify.store.models import Assessment, PolicyVersion, utcnow
from verify.store.stamps import POLICY_STAMP, bump_stamp


def current_policy(*, session: Session) -> PolicyVersion | None:
    return session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc()).limit(1)).first()


def add_policy_version(body: dict, *, actor: str, session: Session) -> PolicyVersion:
    row = _store_version(body, actor=actor, session=session)
    record_audit(actor, "policy.update", target=f"version {row.version}", detail=body, session=session)
    return row


def _store_version(body: dict, *, actor: str, session: Session) -> PolicyVersion:
    latest = current_policy(session=session)
    row = PolicyVersion(version=(latest.version + 1) if latest else 1, body=body, created_at=utcnow(), created_by=actor)
    session.add(row)
    bump_stamp(POLICY_STAMP, session=session)
    session.flush()
    return row


def policy_versions(*, session: Session) -> list[PolicyVersion]:
    """Every stored version, newest first."""
    return list(session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc())))


MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL; a larger number names no version


def get_policy_version(version: int, *, session: Session) -> PolicyVersion:
    row = session.get(PolicyVersion, version) if 1 <= version <= MAX_VERSION else None
    if row is None:
        raise NotFound(f"no policy version {version}")
    return row


def restore_policy_version(version: int, *, actor: str, session: Session) -> PolicyVersion:
    """Store a new version equal to an old one: a restore is a change like any other, audited."""
    old = get_policy_version(version, session=session)
    row = _store_version(dict(old.body), actor=actor, session=session)
    record_audit(actor, "policy.restore", target=f"version {row.version}", detail={"restored": version, **old.body}, session=session)
    return row


def recent_judgements(last: int, *, session: Session) -> Iterator[sa.Row]:
    """The stored verdicts and signals of the last `last` assessments, newest first, streamed.

    Only the columns a re-judgement needs are read, in batches, so 10,000 rows stay cheap.
    """
    query = (
        select(Assessment.id, Assessment.email, Assessment.verdict, Assessment.score, Assessment.signals)
        .order_by(col(Assessment.seq).desc())
        .limit(last)
        .execution_options(yield_per=1000)
    )
    yield from session.execute(query)
