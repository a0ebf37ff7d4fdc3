"""POST /v1/erasure: remove one person's assessments and their feedback (right to erasure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, read_json
from verify.api.context import db_session, services
from verify.api.schemas import text
from verify.engine import identity
from verify.engine.identity import MailRules
from verify.store import lengths
from verify.store.assessments import assessment_ids_of_person, delete_assessments
from verify.store.audit import record_audit
from verify.store.transactions import committed

bp = Blueprint("erasure", __name__, url_prefix="/v1/erasure")


class ErasureIn(BaseModel):
    """Exactly one of email, phone or external_id."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[text(lengths.EMAIL), Field(min_length=1)] | None = None
    phone: Annotated[text(lengths.PHONE), Field(min_length=1)] | None = None
    external_id: Annotated[text(lengths.EXTERNAL_ID), Field(min_length=1)] | None = None

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
    """The stored keys that name one person, made by the normalisers that made the assessments' keys."""

    email_canonical: str | None = None
    email: str | None = None
    phone_e164: str | None = None
    phone: str | None = None
    external_id: str | None = None


def person(body: ErasureIn, rules: MailRules) -> Person:
    """An email by its canonical mailbox (every spelling of it) and its stored spelling; a phone by
    E.164 and as typed; an external id as given."""
    if body.email is not None:
        try:
            key = identity.email_key(body.email, rules=rules)
        except identity.IdentityInvalid:  # an invalid address is stored cleaned, with no canonical form
            return Person(email=identity.clean_text(body.email))
        return Person(email_canonical=key.canonical, email=key.address)
    if body.phone is not None:
        return Person(phone_e164=identity.phone_e164(body.phone), phone=body.phone)
    return Person(external_id=body.external_id)


@bp.post("")
@requires_scope("admin")
def erase():
    body = parse(ErasureIn, read_json())
    target = person(body, services().assessor.providers.mail_rules)
    session = db_session()

    def erased() -> int:
        count, feedback = delete_assessments(assessment_ids_of_person(**vars(target), session=session), session=session)
        # The audit says who erased how much, by which kind of identifier: never the identifier.
        detail = {"assessments": count, "feedback": feedback}
        record_audit(current_key().name, "assessments.erase", target=body.kind, detail=detail, session=session)
        return count

    return {"erased": committed(erased, session=session, conflict="the erasure collided with a concurrent change; retry")}
