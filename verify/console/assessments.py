"""Review queue and assessment page: read, label (one signup or its cluster), block what it shares."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from flask import flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from verify.api.assessments import RELATED_COUNT_CAP, cluster_skip, decode_cursor, encode_cursor, search_filter
from verify.api.context import db_session, services
from verify.api.schemas import SearchIn
from verify.console.auth import current_key, requires_admin
from verify.console.blueprint import bp
from verify.engine.list_values import ValueInvalid, normaliser
from verify.engine.reasons import CATALOGUE
from verify.errors import Conflict, InvalidInput
from verify.store.assessments import AssessmentFilter, add_feedback, feedback_for, get_assessment, related_assessments, search_assessments
from verify.store.audit import record_audit
from verify.store.lists import add_list_entries, get_list
from verify.store.transactions import commit

QUEUE_PAGE = 50
LABELS = ("fraud", "legitimate")
QUEUE_VERDICTS = {
    "open": ("challenge", "deny"), "challenge": ("challenge",), "deny": ("deny",),
    "linked": ("allow",),  # allowed, but sharing a mailbox, phone, device or network with a flagged one
    "allow": ("allow",), "any": None,
}
# what the block buttons put on which list, from which column of the assessment
BLOCKS = {
    "domain": ("blocked-domains", "email_domain", "this email domain"),
    "network": ("blocked-ips", "ip_network", "this IP network"),
    "device": ("blocked-devices", "device_id", "this device"),
    "phone": ("blocked-phone-prefixes", "phone_block", "this phone number block"),
}
EXPIRIES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90), "never": None}


def queue_filters() -> tuple[dict, AssessmentFilter | None, str | None]:
    """The queue's form values, the store filter they make, and a problem to show (or None)."""
    form = {name: request.args.get(name, "").strip() for name in ("verdict", "reason", "since", "until", "domain", "network", "device")}
    form["verdict"] = form["verdict"] if form["verdict"] in QUEUE_VERDICTS else "open"
    query = {
        "email_domain": form["domain"] or None, "ip": form["network"] or None, "device_id": form["device"] or None,
        "reason": form["reason"] or None, "since": form["since"] or None, "until": form["until"] or None,
    }
    try:
        filters = search_filter(SearchIn(**{k: v for k, v in query.items() if v is not None}), services().assessor.providers)
    except ValidationError as error:
        return form, None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    except InvalidInput as error:
        return form, None, error.detail
    return form, replace(filters, verdicts=QUEUE_VERDICTS[form["verdict"]], linked_to_flagged=form["verdict"] == "linked"), None


@bp.get("/queue")
def queue():
    form, filters, problem = queue_filters()
    rows, position, feedback = [], None, {}
    if filters is not None:
        cursor = request.args.get("cursor")
        try:
            after = decode_cursor(cursor) if cursor else None
        except InvalidInput:
            after = None
        session = db_session()
        rows, position = search_assessments(filters, limit=QUEUE_PAGE, after=after, session=session)
        feedback = feedback_for([row.id for row in rows], session=session)
    next_args = {**{k: v for k, v in form.items() if v}, "cursor": encode_cursor(position)} if position else None
    return render_template("console/queue.html", form=form, rows=rows, feedback=feedback, problem=problem,
                           next_args=next_args, reasons=sorted(CATALOGUE), verdicts=list(QUEUE_VERDICTS))


@bp.get("/assessments/<assessment_id>")
def assessment(assessment_id: str):
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    groups = related_assessments(row, limit=100, count_cap=RELATED_COUNT_CAP,
                                 skip=cluster_skip(row, services().assessor.providers), session=session)
    blocks = [(kind, label, getattr(row, column)) for kind, (_, column, label) in BLOCKS.items() if getattr(row, column)]
    return render_template("console/assessment.html", row=row, groups=groups, feedback=feedback_for([row.id], session=session)[row.id],
                           blocks=blocks, expiries=list(EXPIRIES), catalogue=CATALOGUE)


def back(default: str) -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/console/") and not target.startswith("//") else default


@bp.post("/assessments/<assessment_id>/feedback")
def label(assessment_id: str):
    chosen = request.form.get("label")
    if chosen not in LABELS:
        raise InvalidInput("choose fraud or legitimate")
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    note = request.form.get("note", "").strip()[:1000] or None
    add_feedback(row, label=chosen, source="review", note=note, actor=current_key().name, session=session)
    record_audit(current_key().name, "assessment.label", target=row.id, detail={"label": chosen}, session=session)
    commit(session)
    flash(f"Labelled {row.email} as {chosen}.")
    return redirect(back(url_for("console.assessment", assessment_id=row.id)))


@bp.post("/assessments/<assessment_id>/cluster-feedback")
def label_cluster(assessment_id: str):
    """Label every assessment that shares one key with this one, and this one."""
    chosen, shared = request.form.get("label"), request.form.get("shared")
    if chosen not in LABELS:
        raise InvalidInput("choose fraud or legitimate")
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    related = related_assessments(row, limit=500, count_cap=RELATED_COUNT_CAP,
                                  skip=cluster_skip(row, services().assessor.providers), session=session)
    groups = {group.shared: group for group in related}
    if shared not in groups:
        raise InvalidInput("this assessment shares nothing of that kind")
    labelled = full = 0
    for item_id in [row.id] + [item.id for item in groups[shared].items]:
        try:
            add_feedback(get_assessment(item_id, session=session), label=chosen, source="review",
                         note=f"cluster by {shared}", actor=current_key().name, session=session)
            labelled += 1
        except Conflict:
            full += 1
    record_audit(current_key().name, "cluster.label", target=f"{shared} {groups[shared].value}",
                 detail={"label": chosen, "labelled": labelled, "assessment": row.id}, session=session)
    commit(session)
    flash(f"Labelled {labelled} assessments sharing {shared} {groups[shared].value} as {chosen}" + (f" ({full} already full)." if full else "."))
    return redirect(url_for("console.assessment", assessment_id=row.id))


@bp.post("/assessments/<assessment_id>/block")
@requires_admin
def block(assessment_id: str):
    """Put what this signup shares (domain, network, device, phone block) on its deny list, with reason and expiry."""
    kind, expiry = request.form.get("kind"), request.form.get("expires", "never")
    if kind not in BLOCKS or expiry not in EXPIRIES:
        raise InvalidInput("choose what to block and for how long")
    session = db_session()
    row = get_assessment(assessment_id, session=session)
    list_name, column, _ = BLOCKS[kind]
    raw = getattr(row, column)
    if not raw:
        raise InvalidInput(f"this assessment has no {column.replace('_', ' ')}")
    list_def = get_list(list_name, session=session)
    try:
        value = normaliser(list_def.kind, rules=services().assessor.providers.mail_rules)(raw)
    except ValueInvalid as error:
        raise InvalidInput(f"{raw!r} cannot go on {list_name}: {error}") from None
    reason = request.form.get("reason", "").strip()[:500] or f"from assessment {row.id}"
    span = EXPIRIES[expiry]
    expires_at = datetime.now(timezone.utc) + span if span else None
    name = current_key().name
    add_list_entries(list_def, [value], source=f"key:{name}", actor=name, reason=reason, expires_at=expires_at, session=session)
    commit(session)
    flash(f"Blocked {value} on {list_name}" + (f" until {expires_at:%Y-%m-%d %H:%M} UTC." if expires_at else "."))
    return redirect(url_for("console.assessment", assessment_id=row.id))
