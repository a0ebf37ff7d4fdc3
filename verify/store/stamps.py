"""Stamps: counters bumped on every change of a cached thing, so that each worker knows to reload."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from verify.store.models import Stamp

LISTS_STAMP = "lists"
KEYS_STAMP = "keys"
POLICY_STAMP = "policy"
WEBHOOKS_STAMP = "webhooks"
# Moved when stored assessments are deleted (erasure, retention): kept history rows are dropped.
ASSESSMENTS_STAMP = "assessments"
# The same read for the driver (the assessment hot path folds it into its one round trip).
READ_STAMPS = "SELECT name, value FROM stamps"


def read_stamps(*, session: Session) -> dict[str, int]:
    return {name: value for name, value in session.execute(sa.select(Stamp.name, Stamp.value))}


def bump_stamp(name: str, *, session: Session) -> int:
    """Add one to the stamp and return its new value; its row stays locked until the transaction ends."""
    updated = session.execute(sa.update(Stamp).where(Stamp.name == name).values(value=Stamp.value + 1))
    if updated.rowcount == 0:
        session.add(Stamp(name=name, value=1))
        session.flush()
        return 1
    return session.execute(sa.select(Stamp.value).where(Stamp.name == name)).scalar_one()
