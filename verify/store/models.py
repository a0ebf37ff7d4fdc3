"""Every table of the service, in one place (SQLModel); text columns are sized by store/lengths.py."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from verify.store import lengths


def utcnow() -> datetime:
    """The clock every stored timestamp is read from."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so we add it back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable, index=index)


class Assessment(SQLModel, table=True):
    """One judged signup, with the keys that later signups are counted against."""

    __tablename__ = "assessments"
    # The (key, occurred_at) indexes serve the history scans (store/history.py); a distinct
    # count's second column rides in its index, and the reputation keys' carry `seq` (the
    # sample's tie-break), the verdict and the id: the sample is read from the index alone (migration 0007).
    __table_args__ = (
        sa.UniqueConstraint("api_key_id", "idempotency_key", name="uq_assessments_idempotency"),
        sa.Index("ix_assessments_email_canonical_at", "email_canonical", "occurred_at", "email"),
        sa.Index("ix_assessments_email_domain_at", "email_domain", "occurred_at", "seq", "verdict", "id"),
        sa.Index("ix_assessments_local_template_at", "local_template", "email_domain", "occurred_at"),
        sa.Index("ix_assessments_phone_at", "phone_e164", "occurred_at", "email_canonical"),
        sa.Index("ix_assessments_phone_block_at", "phone_block", "occurred_at", "phone_e164"),
        sa.Index("ix_assessments_ip_at", "ip", "occurred_at"),
        sa.Index("ix_assessments_ip_network_at", "ip_network", "occurred_at", "seq", "verdict", "id"),
        sa.Index("ix_assessments_asn_at", "asn", "occurred_at", "seq", "verdict", "id"),
        sa.Index("ix_assessments_device_at", "device_id", "occurred_at", "seq", "email_canonical", "verdict", "id"),
        sa.Index("ix_assessments_payment_at", "payment_fingerprint", "occurred_at", "email_canonical"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    created_at: datetime = utc_column()
    occurred_at: datetime = utc_column(index=True)
    verdict: str = Field(max_length=10, index=True)
    score: int
    policy_version: int
    api_key_id: int | None = Field(default=None)
    idempotency_key: str | None = Field(default=None, max_length=lengths.IDEMPOTENCY_KEY)
    request_hash: str | None = Field(default=None, max_length=64)
    email: str = Field(max_length=lengths.EMAIL)
    email_canonical: str | None = Field(default=None, max_length=lengths.EMAIL)
    email_domain: str | None = Field(default=None, max_length=lengths.DOMAIN)
    local_template: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=lengths.PHONE)
    phone_e164: str | None = Field(default=None, max_length=32)
    phone_block: str | None = Field(default=None, max_length=32)
    ip: str | None = Field(default=None, max_length=lengths.IP)
    ip_network: str | None = Field(default=None, max_length=lengths.IP)
    asn: int | None = Field(default=None, sa_type=sa.BigInteger)
    country: str | None = Field(default=None, max_length=2)
    device_id: str | None = Field(default=None, max_length=lengths.DEVICE_ID)
    payment_fingerprint: str | None = Field(default=None, max_length=lengths.PAYMENT_FINGERPRINT)
    user_agent: str | None = Field(default=None, max_length=lengths.USER_AGENT)
    external_id: str | None = Field(default=None, max_length=lengths.EXTERNAL_ID, index=True)
    metadata_: dict | None = Field(default=None, sa_column=sa.Column("metadata", sa.JSON))
    reasons: list = Field(default_factory=list, sa_type=sa.JSON)
    signals: dict = Field(default_factory=dict, sa_type=sa.JSON)


class Feedback(SQLModel, table=True):
    """The outcome of a challenge or a review, told back by the caller."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: str = Field(max_length=40, index=True)
    label: str = Field(max_length=16)
    source: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=lengths.NOTE)
    actor: str | None = Field(default=None, max_length=lengths.KEY_NAME)
    created_at: datetime = utc_column()


class Revision(SQLModel, table=True):
    """A later verdict on a stored assessment, caused by evidence that arrived after it; the assessment stays as judged."""

    __tablename__ = "revisions"

    # The feed's order: allocated under the `revision_sequence` stamp's row lock, so that a
    # sequence is never visible before a smaller one (see store/revisions.py).
    sequence: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    id: str = Field(max_length=40, unique=True)
    assessment_id: str = Field(max_length=40, index=True)
    external_id: str | None = Field(default=None, max_length=256)
    previous_verdict: str = Field(max_length=10)
    verdict: str = Field(max_length=10)
    reasons: list = Field(default_factory=list, sa_type=sa.JSON)
    cause_kind: str = Field(max_length=16)
    cause_ref: str = Field(max_length=400)
    created_at: datetime = utc_column()


class RevisionJob(SQLModel, table=True):
    """Re-judging work queued with the evidence that causes it, done in batches by `verify worker`."""

    __tablename__ = "revision_jobs"

    id: int | None = Field(default=None, primary_key=True)
    cause_kind: str = Field(max_length=16)
    cause_ref: str = Field(max_length=400)
    # The assessment whose evidence this is (erasure removes its jobs), if any.
    source_id: str | None = Field(default=None, max_length=40, index=True)
    # What to re-judge: links (column, values, window) and the finding to add; see engine/revisions.py.
    payload: dict = Field(default_factory=dict, sa_type=sa.JSON)
    after_seq: int = Field(default=0, sa_type=sa.BigInteger)  # the last seq done on its current link (payload["position"] has all)
    attempts: int = 0  # batches written: the version SQLite's drainers check (store/revisions.py)
    created_at: datetime = utc_column()
    done_at: datetime | None = utc_column(nullable=True, index=True)
    # A batch that raised: counted, its error kept, the job tried again at `retry_at`; after
    # MAX_JOB_FAILURES it is set aside (`failed_at`) until re-queued (migration 0008).
    failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)
    retry_at: datetime | None = utc_column(nullable=True)
    failed_at: datetime | None = utc_column(nullable=True)


class ApiKey(SQLModel, table=True):
    """A caller's credential; the secret itself is never stored, only its hash."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=lengths.KEY_NAME, unique=True)
    lookup: str = Field(max_length=32, unique=True)
    secret_hash: str = Field(max_length=64)
    scopes: list = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = utc_column()
    revoked_at: datetime | None = utc_column(nullable=True)


class ListDef(SQLModel, table=True):
    """A named block, challenge or allow list of one kind of value."""

    __tablename__ = "lists"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=lengths.LIST_NAME, unique=True)
    kind: str = Field(max_length=16)
    action: str = Field(max_length=16)
    description: str = Field(default="", max_length=lengths.LIST_DESCRIPTION)
    builtin: bool = False
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class ListEntry(SQLModel, table=True):
    """One value on a list, with where it came from and until when it holds."""

    __tablename__ = "list_entries"
    __table_args__ = (
        sa.UniqueConstraint("list_id", "value", name="uq_list_entries_value"),
        sa.Index("ix_list_entries_source", "list_id", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="lists.id", ondelete="CASCADE")
    value: str = Field(max_length=lengths.LIST_VALUE)
    reason: str | None = Field(default=None, max_length=lengths.LIST_REASON)
    source: str = Field(max_length=lengths.ENTRY_SOURCE)
    expires_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()


class ListChangeRecord(SQLModel, table=True):
    """One change to a list's entries, kept a while so that each worker can update its index in place.

    `stamp` is the value the `lists` stamp took in the change's transaction: stamps commit in
    order (store/list_changes.py says why), so a worker replays stamps after its own, never ids.
    """

    __tablename__ = "list_changes"

    id: int | None = Field(default=None, primary_key=True)
    stamp: int = Field(index=True)
    list_name: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    action: str = Field(max_length=16)
    op: str = Field(max_length=8)  # add | remove | reset (too many to log: rebuild)
    value: str | None = Field(default=None, max_length=320)
    reason: str | None = Field(default=None, max_length=500)
    expires_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column(index=True)


class PolicyVersion(SQLModel, table=True):
    """One stored version of the scoring policy; the highest version is in force."""

    __tablename__ = "policy_versions"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    body: dict = Field(sa_type=sa.JSON)
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=lengths.KEY_NAME)


class AuditEvent(SQLModel, table=True):
    """A change to lists, policy, keys or stored data: who, what, when."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    actor: str = Field(max_length=lengths.KEY_NAME)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    detail: dict = Field(default_factory=dict, sa_type=sa.JSON)


class Stamp(SQLModel, table=True):
    """A counter bumped on every change of a cached thing, so workers know to reload."""

    __tablename__ = "stamps"

    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


class WebhookEndpoint(SQLModel, table=True):
    """A URL an admin registered to be told of events, with the secret its deliveries are signed with.

    The secret is kept as given out: HMAC signing (Standard Webhooks) needs it, not a hash of it.
    """

    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    events: list = Field(default_factory=list, sa_type=sa.JSON)
    secret: str = Field(max_length=100)
    enabled: bool = True
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    created_by: str = Field(max_length=100)


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint: its signed body, and where its sending stands.

    `claim` names the worker sending it now; `next_attempt_at` is then the end of that claim's
    lease, so a worker that died mid-send leaves a delivery that is due again when it lapses.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "seq"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    endpoint_id: str = Field(max_length=40, foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    event_type: str = Field(max_length=64)
    # The assessment the event is about, so that erasure and retention remove its deliveries.
    assessment_id: str | None = Field(default=None, max_length=40, index=True)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(max_length=16)  # pending | succeeded | failed
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(nullable=True)
    retry_until: datetime = utc_column()
    claim: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_column()
    last_attempt_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_response: str | None = Field(default=None, max_length=500)
