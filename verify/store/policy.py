"""Policy versions, and the stored judgements a new policy is simulated against."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlmodel import Session, col, select

from verify.store.audit import record_audit
from verify.store.models import Assessment, PolicyVersion, utcnow
from verify.store.stamps import POLICY_STAMP, bump_stamp


def current_policy(*, session: Session) -> PolicyVersion | None:
    return session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc()).limit(1)).first()


def add_policy_version(body: dict, *, actor: str, session: Session) -> PolicyVersion:
    latest = current_policy(session=session)
    row = PolicyVersion(version=(latest.version + 1) if latest else 1, body=body, created_at=utcnow(), created_by=actor)
    session.add(row)
    bump_stamp(POLICY_STAMP, session=session)
    record_audit(actor, "policy.update", target=f"version {row.version}", detail=body, session=session)
    session.flush()
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
