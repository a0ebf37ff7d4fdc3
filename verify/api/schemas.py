"""Request and response shapes of the HTTP API (the contract is openapi.yaml)."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator

from verify.store.models import Assessment

METADATA_LIMIT = 4096
FUTURE_TOLERANCE = timedelta(minutes=5)


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 timestamp with its offset, as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone offset (Z or +hh:mm)")
    return moment.astimezone(timezone.utc)


def normalise_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; no email, phone or id contains one either.
    if "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    return value


def text(limit: int) -> Any:
    return Annotated[StrictStr, Field(max_length=limit), AfterValidator(no_nul)]


class SignupIn(BaseModel):
    """The body of POST /v1/assessments."""

    model_config = ConfigDict(extra="forbid")

    email: text(512)
    phone: text(64) | None = None
    ip: text(64) | None = None
    country: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    device_id: text(256) | None = None
    user_agent: text(1024) | None = None
    external_id: text(256) | None = None
    occurred_at: datetime | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else normalise_ip(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _occurred_at(cls, value: Any) -> datetime | None:
        if value is None:
            return None
        moment = parse_rfc3339(value)
        if moment > datetime.now(timezone.utc) + FUTURE_TOLERANCE:
            raise ValueError("must not be more than 5 minutes in the future")
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


def assessment_json(row: Assessment) -> dict[str, Any]:
    """An assessment as the API shows it."""
    return {
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
            "metadata": row.metadata_,
        },
    }
