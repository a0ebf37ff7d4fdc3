"""/v1/assessments: judge a signup, read, search and correct stored verdicts, show their cluster."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone

from flask import Blueprint, request
from sqlmodel import Session

from verify import metrics
from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, parse_query, query_error, read_json
from verify.api.context import db_session, services
from verify.api.schemas import (
    FeedbackIn,
    RelatedIn,
    SearchIn,
    SignupIn,
    assessment_json,
    feedback_json,
    parse_rfc3339,
    related_json,
)
from verify.assessing import Signup
from verify.engine import identity
from verify.engine.reasons import CATALOGUE
from verify.errors import InvalidInput
from verify.intel.providers import Providers
from verify.store import lengths
from verify.store.revisions import revision_document, revisions_of
from verify.store.assessments import (
    AssessmentFilter,
    add_feedback,
    assess_once,
    feedback_for,
    get_assessment,
    related_assessments,
    search_assessments,
)
from verify.store.models import Assessment
from verify.store.transactions import committed
from verify.store.webhooks import ANNOUNCED_VERDICTS, ASSESSMENT_CREATED, enqueue_event

bp = Blueprint("assessments", __name__, url_prefix="/v1/assessments")


def body_hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 0 < len(key) <= lengths.IDEMPOTENCY_KEY or "\x00" in key):  # PostgreSQL text holds no NUL
        message = f"must be 1 to {lengths.IDEMPOTENCY_KEY} characters, without NUL"
        raise InvalidInput(f"the Idempotency-Key header {message}", errors=[{"field": "Idempotency-Key", "message": message}])
    return key


def announce(row: Assessment, *, session: Session) -> None:
    """Queue `assessment.created` for subscribed endpoints, in the transaction that stores the assessment."""
    if row.verdict in ANNOUNCED_VERDICTS:
        enqueue_event(session, ASSESSMENT_CREATED, assessment_json(row))


@bp.post("")
@requires_scope("assess")
def create():
    document = read_json()
    body = parse(SignupIn, document)
    key, digest, api_key = idempotency_key(), body_hash(document), current_key()
    now = datetime.now(timezone.utc)
    signup = Signup(**body.model_dump(exclude={"occurred_at"}), occurred_at=body.occurred_at or now)
    session = db_session()

    def assess_and_announce() -> Assessment:
        row = services().assessor.assess(
            signup, session=session, now=now, api_key_id=api_key.id, idempotency_key=key, request_hash=digest
        )
        announce(row, session=session)
        return row

    row, created = assess_once(
        assess_and_announce,
        api_key_id=api_key.id, idempotency_key=key, request_hash=digest, session=session,
    )
    if not created:  # a retry: the first answer again
        return assessment_json(row), 200
    metrics.record_assessment(row.verdict, (reason["code"] for reason in row.reasons))
    return assessment_json(row), 201


@bp.get("/<assessment_id>")
@requires_scope("assess", "admin", "review")
def read(assessment_id: str):
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    shown = assessment_json(row, feedback=feedback_for([row.id], session=session)[row.id])
    revised = revisions_of(row.id, session=session)
    shown["current_verdict"] = revised[-1].verdict if revised else row.verdict
    shown["revisions"] = [revision_document(revision) for revision in revised]
    return shown


# -- search ------------------------------------------------------------------------------

RELATED_COUNT_CAP = 10_000


def bad_query(field: str, message: str) -> InvalidInput:
    return query_error(field, message)


def encode_cursor(position: tuple[datetime, int] | None) -> str | None:
    if position is None:
        return None
    at, seq = position
    raw = json.dumps([at.astimezone(timezone.utc).isoformat(), seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = parse_rfc3339(at)
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_query("cursor", "not a cursor this service gave out") from None
    return moment, seq


def search_filter(query: SearchIn, providers: Providers) -> AssessmentFilter:
    """The query, normalised with the same functions that made the stored keys."""
    found: dict = {"verdict": query.verdict, "device_id": query.device_id, "since": query.since, "until": query.until}
    if query.email is not None:
        try:
            found["email_canonical"] = identity.email_key(query.email, rules=providers.mail_rules).canonical
        except identity.IdentityInvalid as error:
            # A "+" sent unencoded in a query string arrives as a space (application/x-www-form-urlencoded).
            hint = "; a space here is often a `+` sent unencoded: URL-encode it as %2B" if " " in query.email.strip() else ""
            raise bad_query("email", f"{error}{hint}") from None
    if query.email_domain is not None:
        try:
            found["email_domain"] = identity.email_domain(query.email_domain)
        except identity.IdentityInvalid as error:
            raise bad_query("email_domain", str(error)) from None
    if query.ip is not None:
        try:
            kind, values = identity.ip_filter(query.ip)
        except ValueError as error:
            raise bad_query("ip", str(error)) from None
        found["ips" if kind == "ip" else "ip_networks"] = values
    if query.phone is not None:
        found["phone_e164"] = identity.phone_e164(query.phone)
        if found["phone_e164"] is None:
            raise bad_query("phone", "not a phone number in E.164 form (+14155550123)")
    if query.device_id is not None:
        try:
            found["device_id"] = identity.device(query.device_id)
        except identity.IdentityInvalid as error:
            raise bad_query("device_id", str(error)) from None
    if query.payment_fingerprint is not None:
        try:
            found["payment_fingerprint"] = identity.payment_fingerprint(query.payment_fingerprint)
        except identity.IdentityInvalid as error:
            raise bad_query("payment_fingerprint", str(error)) from None
    if query.reason is not None and query.reason not in CATALOGUE:
        raise bad_query("reason", "unknown reason code")
    found["reason"] = query.reason
    return AssessmentFilter(**found)


@bp.get("")
@requires_scope("admin", "review")
def search():
    query = parse_query(SearchIn)
    filters = search_filter(query, services().assessor.providers)
    after = decode_cursor(query.cursor) if query.cursor else None
    session = db_session()
    rows, position = search_assessments(filters, limit=query.limit, after=after, session=session)
    feedback = feedback_for([row.id for row in rows], session=session)
    return {"items": [assessment_json(row, feedback=feedback[row.id]) for row in rows], "next_cursor": encode_cursor(position)}


# -- feedback and clusters ---------------------------------------------------------------

@bp.post("/<assessment_id>/feedback")
@requires_scope("assess", "admin", "review")
def give_feedback(assessment_id: str):
    body = parse(FeedbackIn, read_json())
    session = db_session()
    stored = committed(
        lambda: add_feedback(get_assessment(assessment_id, session=session), **body.model_dump(), actor=current_key().name, session=session),
        session=session, conflict="the feedback collided with a concurrent change; retry",
    )
    return feedback_json(stored), 201


def cluster_skip(row: Assessment, providers: Providers) -> tuple[str, ...]:
    """Keys that make no cluster: a free-mail or relay domain is shared by millions of strangers."""
    domain = row.email_domain or ""
    return ("email_domain",) if providers.is_free(domain) or providers.is_relay(domain) or domain in providers.rules else ()


@bp.get("/<assessment_id>/related")
@requires_scope("admin", "review")
def related(assessment_id: str):
    query = parse_query(RelatedIn)
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    groups = related_assessments(
        row, limit=query.limit, count_cap=RELATED_COUNT_CAP, skip=cluster_skip(row, services().assessor.providers), session=session
    )
    return related_json(row.id, groups)
