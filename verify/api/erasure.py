"""POST /v1/erasure: remove one person's assessments and their feedback (right to erasure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import phonenumbers
from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, read_json
from verify.api.context import db_session, services
from verify.api.schemas import text
from verify.engine.email import EmailInvalid, parse_email
from verify.engine.identity import ProviderRule, canonical_email
from verify.store.assessments import assessment_ids_of_person, delete_assessments
from verify.store.audit import record_audit

bp = Blueprint("erasure", __name__, url_prefix="/v1/erasure")


class ErasureIn(BaseModel):
    """Exactly one of email, phone or external_id."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[text(512), Field(min_length=1)] | None = None
    phone: Annotated[text(64), Field(min_length=1)] | None = None
    external_id: Annotated[text(256), Field(min_length=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) != 1:
            raise ValueError("send exactly one of email, phone or external_id")
        return data

    @field_validator("email", "phone", "external_id")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("must be a string")
        return value

    @property
    def kind(self) -> str:
        return next(name for name, value in self if value is not None)


@dataclass(frozen=True)
class Person:
    """The stored forms that name one person, normalised as assessments store them."""

    email_canonical: str | None = None
    email: str | None = None
    phone_e164: str | None = None
    phone: str | None = None
    external_id: str | None = None


def e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def person(body: ErasureIn, rules: Mapping[str, ProviderRule]) -> Person:
    """Match an email on its canonical mailbox (as assessments compute it) and as typed;
    a phone on E.164 and as typed; an external id as given."""
    if body.email is not None:
        try:
            parsed = parse_email(body.email)
        except EmailInvalid:  # stored as typed, with no canonical form
            return Person(email=body.email)
        return Person(email_canonical=canonical_email(parsed.local, parsed.ascii_domain, rules), email=body.email)
    if body.phone is not None:
        return Person(phone_e164=e164(body.phone), phone=body.phone)
    return Person(external_id=body.external_id)


@bp.post("")
@requires_scope("admin")
def erase():
    body = parse(ErasureIn, read_json())
    target = person(body, services().assessor.providers.rules)
    session = db_session()
    ids = assessment_ids_of_person(**vars(target), session=session)
    erased, feedback = delete_assessments(ids, session=session)
    # The audit says who erased how much, by which kind of identifier: never the identifier.
    record_audit(
        current_key().name, "assessments.erase", target=body.kind, detail={"assessments": erased, "feedback": feedback}, session=session
    )
    session.commit()
    return {"erased": erased}
