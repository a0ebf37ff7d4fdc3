"""Request and response shapes of the HTTP API (the contract is openapi.yaml)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from rfc3339_validator import validate_rfc3339
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, field_validator

from verify.engine import identity, list_values
from verify.store import lengths
from verify.store.models import Assessment, Feedback
from verify.store.assessments import RelatedGroup

METADATA_LIMIT = 4096
FUTURE_TOLERANCE = timedelta(minutes=5)
# History windows reach back from a signup's time; a signup dated near year 1 would take them
# before the first date a datetime holds. No signup predates the Unix epoch.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 (section 5.6) timestamp with its offset, as an aware UTC datetime.

    ISO 8601 forms that datetime.fromisoformat also reads (week dates, the basic format, no
    offset) are refused: every time input is read the same strict way. A moment that falls
    outside datetime's range once moved to UTC (year 1 ahead of UTC, year 9999 behind it) is
    refused too rather than overflowing later.
    """
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    # RFC 3339 section 5.6 lets "T" and "Z" be lower case; the validator reads upper case.
    upper = value.upper()
    if not validate_rfc3339(upper):
        raise ValueError("must be an RFC 3339 date-time with an offset, such as 2026-01-31T12:00:00Z")
    try:
        return datetime.fromisoformat(upper).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError("must be a date-time between years 0001 and 9999 in UTC (leap seconds are not taken)") from None


def normalise_ip(value: str) -> str:
    """The signup's IP as identity.ip_address keys it (mapped IPv6 unwrapped; zone ids and leading zeros refused)."""
    try:
        return identity.ip_address(value)
    except identity.IdentityInvalid as error:
        raise ValueError(f"must be an IPv4 or IPv6 address: {error}") from None


def no_nul(value: Any) -> Any:
    # PostgreSQL text cannot hold U+0000; no email, phone or id contains one either.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    return value


def text(limit: int) -> Any:
    return Annotated[StrictStr, Field(max_length=limit), AfterValidator(no_nul)]


def query_text(limit: int) -> Any:
    """A query string value of at most `limit` characters, without NUL (PostgreSQL text cannot hold it)."""
    return text(limit)


# A query or body time: RFC 3339 with its offset, read strictly (parse_rfc3339).
RFC3339 = Annotated[datetime, BeforeValidator(parse_rfc3339)]


class SignupIn(BaseModel):
    """The body of POST /v1/assessments."""

    model_config = ConfigDict(extra="forbid")

    email: text(lengths.EMAIL)
    phone: text(lengths.PHONE) | None = None
    ip: text(lengths.IP) | None = None
    country: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    device_id: text(lengths.DEVICE_ID) | None = None
    user_agent: text(lengths.USER_AGENT) | None = None
    external_id: text(lengths.EXTERNAL_ID) | None = None
    occurred_at: datetime | None = None
    payment_fingerprint: text(128) | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        # What is no address is stored as sent, in NFC, which writes a few characters (the
        # composition exclusions) as two or three: the stored spelling must fit its column too.
        if len(identity.clean_text(value)) > lengths.EMAIL:
            raise ValueError(f"must be at most {lengths.EMAIL} characters in Unicode NFC")
        return value

    @field_validator("payment_fingerprint")
    @classmethod
    def _payment_fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return identity.payment_fingerprint(value)
        except identity.IdentityInvalid as error:  # the message never quotes the value
            raise ValueError(str(error)) from None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else normalise_ip(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return identity.country(value)
        except identity.IdentityInvalid as error:
            raise ValueError(str(error)) from None

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str | None) -> str | None:
        # The same normalisation as `device` list entries, so that a listed device matches.
        return None if value is None else list_values.device(value)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _occurred_at(cls, value: Any) -> datetime | None:
        if value is None:
            return None
        moment = parse_rfc3339(value)
        if moment > datetime.now(timezone.utc) + FUTURE_TOLERANCE:
            raise ValueError("must not be more than 5 minutes in the future")
        if moment < EARLIEST_OCCURRED_AT:
            raise ValueError("must not be before 1970-01-01T00:00:00Z")
        return moment

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":")).encode()) > METADATA_LIMIT:
            raise ValueError(f"must be at most {METADATA_LIMIT} bytes as JSON")
        return value


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assessment_json(row: Assessment, *, feedback: list[Feedback] | None = None) -> dict[str, Any]:
    """An assessment as the API shows it; with its feedback when the caller read it."""
    shown = {
        "id": row.id,
        "verdict": row.verdict,
        "score": row.score,
        "reasons": row.reasons,
        "signals": row.signals,
        "policy_version": row.policy_version,
        "occurred_at": timestamp(row.occurred_at),
        "created_at": timestamp(row.created_at),
        "request": {
            "email": row.email,
            "phone": row.phone,
            "ip": row.ip,
            "country": row.country,
            "device_id": row.device_id,
            "user_agent": row.user_agent,
            "external_id": row.external_id,
            "payment_fingerprint": row.payment_fingerprint,
            "metadata": row.metadata_,
        },
    }
    if feedback is not None:
        shown["feedback"] = [feedback_json(item) for item in feedback]
    return shown


# -- search, feedback, clusters ----------------------------------------------------------

class SearchIn(BaseModel):
    """The query of GET /v1/assessments, before normalisation."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)

    verdict: Literal["allow", "challenge", "deny"] | None = None
    email: text(lengths.EMAIL) | None = None
    email_domain: text(lengths.DOMAIN) | None = None
    ip: text(lengths.IP) | None = None
    phone: text(lengths.PHONE) | None = None
    device_id: text(lengths.DEVICE_ID) | None = None
    payment_fingerprint: text(lengths.PAYMENT_FINGERPRINT) | None = None
    reason: text(64) | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: text(200) | None = None

    @field_validator("since", "until", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> datetime | None:
        return None if value is None else parse_rfc3339(value)


class RelatedIn(BaseModel):
    """The query of GET /v1/assessments/{id}/related."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=500)


class FeedbackIn(BaseModel):
    """The body of POST /v1/assessments/{id}/feedback."""

    model_config = ConfigDict(extra="forbid")

    label: Literal["fraud", "legitimate"]
    source: Literal["challenge", "review", "chargeback", "other"] = "other"
    note: text(lengths.NOTE) | None = None

    @field_validator("note", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


def feedback_json(row: Feedback) -> dict[str, Any]:
    return {
        "assessment_id": row.assessment_id,
        "label": row.label,
        "source": row.source,
        "note": row.note,
        "created_at": timestamp(row.created_at),
    }


def related_json(assessment_id: str, groups: list[RelatedGroup]) -> dict[str, Any]:
    return {
        "id": assessment_id,
        "groups": [
            {
                "shared": group.shared,
                "value": group.value,
                "count": group.count,
                "items": [
                    {"id": item.id, "email": item.email, "verdict": item.verdict, "occurred_at": timestamp(item.occurred_at)}
                    for item in group.items
                ],
            }
            for group in groups
        ],
    }
