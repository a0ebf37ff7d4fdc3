"""/v1/assessments: judge a signup, read, search and correct stored verdicts, show their cluster."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, current_app, request

from verify import metrics
from verify.api import server_timing
from verify.api.auth import allowed, bearer_secret, current_key, known_key, requires_scope
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
from verify.errors import Conflict, InvalidInput
from verify.intel.providers import Providers
from verify.store import lengths
from verify.store.revisions import revision_document, revisions_of
from verify.stages import Stages
from verify.store.assessments import (
    AssessmentFilter,
    add_feedback,
    feedback_for,
    get_assessment,
    related_assessments,
    search_assessments,
)
from verify.store.driver import Driver, UniqueViolation, pooled_driver
from verify.store.models import ApiKey, Assessment
from verify.store.snapshots import Snapshot
from verify.store.stamps import READ_STAMPS
from verify.store.transactions import committed
from verify.store.webhooks import ANNOUNCED_VERDICTS, ASSESSMENT_CREATED, delivery_rows

bp = Blueprint("assessments", __name__, url_prefix="/v1/assessments")


def body_hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 0 < len(key) <= lengths.IDEMPOTENCY_KEY or "\x00" in key):  # PostgreSQL text holds no NUL
        message = f"must be 1 to {lengths.IDEMPOTENCY_KEY} characters, without NUL"
        raise InvalidInput(f"the Idempotency-Key header {message}", errors=[{"field": "Idempotency-Key", "message": message}])
    return key


def announcement(row: Any, shown: dict[str, Any], snapshot: Snapshot, *, now: datetime) -> list[dict[str, Any]]:
    """`assessment.created` deliveries for the subscribed endpoints, written with the assessment."""
    if row.verdict not in ANNOUNCED_VERDICTS:
        return []
    return delivery_rows(snapshot.subscriptions, ASSESSMENT_CREATED, [shown], now=now)


def assessing_key(secret: str, driver: Driver) -> ApiKey:
    """The caller's key from this process's copy; only a key the copy does not know costs a read
    of the stamps (it may be newer than the copy). A revoked key is caught after the read round trip."""
    snapshots = services().assessor.snapshots
    key = snapshots.cached_api_key(secret)
    if key is None:
        stamps = dict(driver.read([(READ_STAMPS, {})])[0])
        key = snapshots.api_key_at(secret, stamps, db_session)
    return allowed(known_key(key), "assess")


@bp.post("")
def create():
    """The hot path: one read round trip and one write round trip through the driver, no ORM."""
    settings, assessor = services().settings, services().assessor
    stages = Stages(enabled=settings.server_timing)
    secret = bearer_secret()
    with pooled_driver(services().database.hot_engine) as driver:
        api_key = assessing_key(secret, driver)
        stages.mark("auth")
        document = read_json()
        body = parse(SignupIn, document)
        key, digest = idempotency_key(), body_hash(document)
        now = datetime.now(timezone.utc)
        signup = Signup(**body.model_dump(exclude={"occurred_at"}), occurred_at=body.occurred_at or now)
        stages.mark("validation")
        for attempt in range(2):
            judged = assessor.judge_signup(
                signup, driver=driver, session=db_session, now=now, api_key_id=api_key.id, idempotency_key=key,
                request_hash=digest, stages=stages,
            )
            known_key(assessor.snapshots.api_key_at(secret, judged.stamps, db_session))  # revoked meanwhile: nothing is stored
            if judged.earlier is not None:  # a retry: the first answer again
                return repeated(judged.earlier, digest)
            shown = assessment_json(judged.row)
            try:
                assessor.record(judged, driver=driver, deliveries=announcement(judged.row, shown, judged.snapshot, now=now))
                stages.mark("record")
                driver.commit()
                stages.mark("commit")
                break
            except UniqueViolation:  # a concurrent retry under the same Idempotency-Key stored first
                driver.rollback()
                if attempt:
                    raise Conflict("the signup collided with a concurrent one; retry") from None
    answer = current_app.make_response((shown, 201))
    stages.mark("respond")
    metrics.record_assessment(judged.row.verdict, (reason["code"] for reason in judged.row.reasons))
    server_timing.time_rest(stages)
    return answer


def repeated(earlier: tuple[str, str], digest: str):
    earlier_id, earlier_hash = earlier
    if earlier_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different body")
    return assessment_json(get_assessment(earlier_id, session=db_session())), 200


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
