"""/v1/assessments: judge a signup, read a stored verdict."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from flask import Blueprint, request
from sqlalchemy.exc import IntegrityError

from verify import metrics
from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, read_json
from verify.api.context import db_session, services
from verify.api.schemas import SignupIn, assessment_json
from verify.assessing import Signup
from verify.errors import Conflict, InvalidInput
from verify.store import queries

bp = Blueprint("assessments", __name__, url_prefix="/v1/assessments")

IDEMPOTENCY_KEY_LIMIT = 255


def body_hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_LIMIT:
        raise InvalidInput(
            "the Idempotency-Key header must be 1 to 255 characters",
            errors=[{"field": "Idempotency-Key", "message": "must be 1 to 255 characters"}],
        )
    return key


def replay(key_id: int, key: str, digest: str) -> tuple[dict, int] | None:
    """The first answer given for this idempotency key, or None if there was none."""
    earlier = queries.find_by_idempotency_key(key_id, key, session=db_session())
    if earlier is None:
        return None
    if earlier.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different body")
    return assessment_json(earlier), 200


@bp.post("")
@requires_scope("assess")
def create():
    document = read_json()
    body = parse(SignupIn, document)
    key, digest, api_key = idempotency_key(), body_hash(document), current_key()
    if key and (earlier := replay(api_key.id, key, digest)):
        return earlier
    now = datetime.now(timezone.utc)
    signup = Signup(**body.model_dump(exclude={"occurred_at"}), occurred_at=body.occurred_at or now)
    session = db_session()
    try:
        row = services().assessor.assess(
            signup, session=session, now=now, api_key_id=api_key.id, idempotency_key=key, request_hash=digest
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        if key and (earlier := replay(api_key.id, key, digest)):  # a concurrent retry won the race
            return earlier
        raise
    metrics.record_assessment(row.verdict, (reason["code"] for reason in row.reasons))
    return assessment_json(row), 201


@bp.get("/<assessment_id>")
@requires_scope("assess", "admin")
def read(assessment_id: str):
    return assessment_json(queries.get_assessment(assessment_id, session=db_session()))
