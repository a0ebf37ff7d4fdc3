"""Lists: counts and provenance; search, add, edit, remove; upload with a preview; export; delete a custom list."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for

from verify.api.context import db_session, services
from verify.api.lists import MAX_VALUES, future_moment
from verify.api.schemas import parse_rfc3339
from verify.console.auth import current_key, requires_admin
from verify.console.blueprint import bp
from verify.engine.list_values import LIST_NAME, FileRow, ValuesInvalid, entries_csv, file_rows, normalise_all, normaliser
from verify.errors import InvalidInput
from verify.store.lists import (
    add_list_entries,
    create_list,
    delete_list,
    delete_list_value,
    get_list,
    import_list_entries,
    list_entries_page,
    list_summaries,
    preview_list_entries,
    source_counts,
    stream_entries,
)
from verify.store.transactions import commit

PAGE = 100
KINDS = ("email", "email_domain", "ip", "asn", "country", "phone_prefix", "device")
ACTIONS = ("deny", "challenge", "allow")


def actor() -> str:
    return current_key().name


def expiry(text: str) -> datetime | None:
    """A form's expiry: empty for never, else RFC 3339 or a date (midnight UTC), in the future."""
    text = text.strip()
    if not text:
        return None
    try:
        return future_moment(text if "T" in text.upper() else f"{text}T00:00:00Z")
    except ValueError as error:
        raise InvalidInput(f"expiry {text!r}: {error}") from None


def rules():
    return services().assessor.providers.mail_rules


@bp.get("/lists")
@requires_admin
def lists():
    return render_template("console/lists.html", summaries=list_summaries(session=db_session()), kinds=KINDS, actions=ACTIONS)


@bp.post("/lists")
@requires_admin
def create():
    name, kind, action = (request.form.get(field, "").strip() for field in ("name", "kind", "action"))
    if not LIST_NAME.match(name) or kind not in KINDS or action not in ACTIONS:
        raise InvalidInput("a list needs a name (lower case letters, digits, dashes), a kind and an action")
    session = db_session()
    create_list(name, kind=kind, action=action, description=request.form.get("description", "").strip()[:500], actor=actor(), session=session)
    commit(session)
    flash(f"Created the list {name}.")
    return redirect(url_for("console.list_page", name=name))


@bp.get("/lists/<name>")
@requires_admin
def list_page(name: str):
    session = db_session()
    list_def = get_list(name, session=session)
    q = request.args.get("q", "").strip()[:320] or None
    after = request.args.get("after") or None
    rows = list_entries_page(list_def, limit=PAGE + 1, after=after, q=q, session=session)
    return render_template("console/list.html", list_def=list_def, rows=rows[:PAGE], q=q or "",
                           more=rows[PAGE - 1].value if len(rows) > PAGE else None, sources=source_counts(list_def, session=session))


@bp.post("/lists/<name>/entries")
@requires_admin
def add(name: str):
    """Add values, or edit one: a value already on the list takes the new reason and expiry."""
    session = db_session()
    list_def = get_list(name, session=session)
    raw = [line.strip() for line in request.form.get("values", "").replace(",", "\n").splitlines() if line.strip()]
    if not raw:
        raise InvalidInput("give at least one value")
    try:
        values = normalise_all(list_def.kind, [file_row.located for file_row in rows_of(raw)], rules=rules())
    except ValuesInvalid as error:
        raise InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in error.errors)) from None
    added, updated = add_list_entries(list_def, values, source=f"key:{actor()}", actor=actor(),
                                      reason=request.form.get("reason", "").strip()[:500] or None,
                                      expires_at=expiry(request.form.get("expires_at", "")), session=session)
    commit(session)
    flash(f"Added {added}, updated {updated}.")
    return redirect(url_for("console.list_page", name=name))


def rows_of(raw: list[str]) -> list[FileRow]:
    return file_rows("\n".join(raw), is_csv=False, now=datetime.now(timezone.utc), parse_time=parse_rfc3339)


@bp.post("/lists/<name>/remove")
@requires_admin
def remove(name: str):
    session = db_session()
    list_def = get_list(name, session=session)
    try:
        value = normaliser(list_def.kind, rules=rules())(request.form.get("value", ""))
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    delete_list_value(list_def, value, actor=actor(), session=session)
    commit(session)
    flash(f"Removed {value}.")
    return redirect(url_for("console.list_page", name=name))


def parsed_upload(list_def, text: str, *, is_csv: bool, reason: str | None, expires_at: datetime | None):
    """(entries, bad lines) of an uploaded file, by the same parser and normalisers as the API and CLI."""
    try:
        rows = file_rows(text, is_csv=is_csv, now=datetime.now(timezone.utc), parse_time=parse_rfc3339)
    except ValuesInvalid as error:
        return [], error.errors
    if len(rows) > MAX_VALUES:
        return [], [{"field": "file", "message": f"at most {MAX_VALUES} values"}]
    try:
        values = normalise_all(list_def.kind, [row.located for row in rows], rules=rules())
    except ValuesInvalid as error:
        return [], error.errors
    return [(value, row.reason or reason, row.expires_at or expires_at) for value, row in zip(values, rows)], []


@bp.post("/lists/<name>/upload")
@requires_admin
def upload(name: str):
    """First step: show what the file would add and update, and every bad line; change nothing."""
    session = db_session()
    list_def = get_list(name, session=session)
    upload_file = request.files.get("file")
    text = request.form.get("text") or (upload_file.read().decode("utf-8-sig", errors="replace") if upload_file else "")
    filename = request.form.get("filename") or (upload_file.filename if upload_file else "") or "upload.txt"
    is_csv = filename.lower().endswith(".csv")
    reason = request.form.get("reason", "").strip()[:500] or None
    expires_at = expiry(request.form.get("expires_at", ""))
    entries, bad = parsed_upload(list_def, text, is_csv=is_csv, reason=reason, expires_at=expires_at)
    if request.form.get("confirm") == "yes" and entries and not bad:
        added, updated = import_list_entries(list_def, entries, source=f"file:{filename[:180]}", actor=actor(), session=session)
        commit(session)
        flash(f"Uploaded {filename}: added {added}, updated {updated}.")
        return redirect(url_for("console.list_page", name=name))
    new, present = preview_list_entries(list_def, [value for value, _, _ in entries], session=session)
    return render_template("console/upload.html", list_def=list_def, text=text, filename=filename, bad=bad, new=new,
                           present=present, reason=reason or "", expires_at=request.form.get("expires_at", ""))


@bp.get("/lists/<name>/export")
@requires_admin
def export(name: str):
    session = db_session()
    list_def = get_list(name, session=session)
    lines = entries_csv(stream_entries(list_def, session=session))
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{list_def.name}.csv"'})


@bp.post("/lists/<name>/delete")
@requires_admin
def remove_list(name: str):
    session = db_session()
    delete_list(get_list(name, session=session), actor=actor(), session=session)
    commit(session)
    flash(f"Deleted the list {name}.")
    return redirect(url_for("console.lists"))
