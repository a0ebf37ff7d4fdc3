"""/v1/lists: block, challenge and allow lists and their entries (scope admin)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from flask import Blueprint, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator

from verify.api.auth import current_key, requires_scope
from verify.api.bodies import parse, parse_query, read_json
from verify.api.context import db_session, services
from verify.api.paging import decode_cursor, encode_cursor
from verify.api.schemas import parse_rfc3339, text, timestamp
from verify.engine.list_values import (
    LIST_NAME,
    FileRow,
    Located,
    ValueInvalid,
    ValuesInvalid,
    file_rows,
    normalise_all,
    normaliser,
    text_lines,
)
from verify.errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from verify.store import lengths
from verify.store.lists import (
    add_list_entries,
    create_list,
    delete_list,
    delete_list_source,
    delete_list_value,
    get_list,
    import_list_entries,
    list_entries_page,
    list_summaries,
    replace_list_entries,
)
from verify.store.models import ListDef, ListEntry
from verify.store.transactions import committed

bp = Blueprint("lists", __name__, url_prefix="/v1/lists")

MAX_VALUES = 10_000
CONCURRENT = "the list was changed concurrently; retry"
Kind = Literal["email", "email_domain", "ip", "asn", "country", "phone_prefix", "device"]
Action = Literal["deny", "challenge", "allow"]
def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def clean_text(limit: int) -> Any:
    return Annotated[text(limit), AfterValidator(_no_nul)]


def future_moment(value: Any) -> datetime:
    moment = parse_rfc3339(value)
    if moment <= datetime.now(timezone.utc):
        raise ValueError("must be in the future (an expired entry would never match)")
    return moment


class ListIn(BaseModel):
    """The body of POST /v1/lists."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, Field(pattern=LIST_NAME.pattern)]
    kind: Kind
    action: Action
    description: clean_text(lengths.LIST_DESCRIPTION) = ""


class EntriesIn(BaseModel):
    """The body of POST /v1/lists/{name}/entries."""

    model_config = ConfigDict(extra="forbid")

    values: Annotated[list[text(lengths.LIST_VALUE)], Field(min_length=1, max_length=MAX_VALUES)]
    reason: clean_text(lengths.LIST_REASON) | None = None
    expires_at: datetime | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _expires_at(cls, value: Any) -> datetime | None:
        return None if value is None else future_moment(value)


class UploadQuery(BaseModel):
    """The query of a text/plain or text/csv upload to POST /v1/lists/{name}/entries."""

    model_config = ConfigDict(extra="forbid")

    source: clean_text(190) | None = None
    reason: clean_text(500) | None = None
    expires_at: text(64) | None = None

    @field_validator("expires_at")
    @classmethod
    def _expires_at(cls, value: str | None) -> str | None:
        if value is not None:
            future_moment(value)
        return value


class EntriesReplaceIn(BaseModel):
    """The JSON body of PUT /v1/lists/{name}/entries."""

    model_config = ConfigDict(extra="forbid")

    values: Annotated[list[text(lengths.LIST_VALUE)], Field(max_length=MAX_VALUES)]
    reason: clean_text(lengths.LIST_REASON) | None = None


class EntriesQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: text(200) | None = None
    q: clean_text(lengths.LIST_VALUE) | None = None
    source: clean_text(lengths.ENTRY_SOURCE) | None = None


class RemoveQuery(BaseModel):
    value: clean_text(lengths.LIST_VALUE) | None = None
    source: clean_text(lengths.ENTRY_SOURCE) | None = None


def list_json(row: ListDef, entry_count: int) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "action": row.action,
        "description": row.description,
        "builtin": row.builtin,
        "entry_count": entry_count,
        "updated_at": timestamp(row.updated_at),
    }


def entry_json(row: ListEntry) -> dict[str, Any]:
    return {
        "value": row.value,
        "reason": row.reason,
        "source": row.source,
        "expires_at": timestamp(row.expires_at) if row.expires_at else None,
        "created_at": timestamp(row.created_at),
    }


def actor() -> str:
    return current_key().name


def key_source() -> str:
    """Provenance of values an admin sends over HTTP: the key that sent them."""
    return f"key:{current_key().name}"


def normalised(list_def: ListDef, located: list[Located]) -> list[str]:
    """Every value normalised for the list's kind; one bad value rejects them all (422)."""
    try:
        return normalise_all(list_def.kind, located, rules=services().assessor.providers.mail_rules)
    except ValuesInvalid as error:
        raise InvalidInput(f"{len(error.errors)} value(s) cannot go on a list of kind {list_def.kind}", errors=error.errors) from None


def decoded_text() -> str:
    try:
        return request.get_data().decode(request.mimetype_params.get("charset", "utf-8"))
    except (UnicodeDecodeError, LookupError):
        raise MalformedRequest("the text cannot be decoded in its charset (UTF-8 by default)") from None


def uploaded_rows(text: str, *, is_csv: bool, reason: str | None, expires_at: datetime | None) -> list[FileRow]:
    """The rows of an uploaded file; the query's reason and expiry fill what a row leaves empty."""
    try:
        rows = file_rows(text, is_csv=is_csv, now=datetime.now(timezone.utc), parse_time=parse_rfc3339)
    except ValuesInvalid as error:
        raise InvalidInput(f"{len(error.errors)} line(s) of the file are not valid", errors=error.errors) from None
    if len(rows) > MAX_VALUES:
        raise InvalidInput(f"at most {MAX_VALUES} values", errors=[{"field": "body", "message": f"at most {MAX_VALUES} values"}])
    return [FileRow(row.located, row.reason or reason, row.expires_at or expires_at) for row in rows]


def upload_source(source: str | None) -> str:
    """Provenance of an uploaded file: `file:<name>` when named, else the key that sent it."""
    if source is None:
        return key_source()
    return source if source.startswith("file:") else f"file:{source}"


def replacement_values() -> tuple[list[Located], str | None]:
    """The values of a PUT body: JSON `{"values": [...]}` or text/plain, one value per line."""
    if request.mimetype == "text/plain":
        lines = text_lines(decoded_text())
        if len(lines) > MAX_VALUES:
            raise InvalidInput(f"at most {MAX_VALUES} values", errors=[{"field": "body", "message": f"at most {MAX_VALUES} values"}])
        return lines, None
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the values as application/json or text/plain")
    body = parse(EntriesReplaceIn, read_json())
    return [Located(f"values[{i}]", value) for i, value in enumerate(body.values)], body.reason


@bp.get("")
@requires_scope("admin")
def index():
    return {"items": [list_json(row, count) for row, count in list_summaries(session=db_session())]}


@bp.post("")
@requires_scope("admin")
def create():
    body = parse(ListIn, read_json())
    session = db_session()
    row = committed(lambda: create_list(
        body.name, kind=body.kind, action=body.action, description=body.description, actor=actor(), session=session
    ), session=session, conflict=CONCURRENT)
    return list_json(row, 0), 201


@bp.get("/<name>/entries")
@requires_scope("admin")
def entries(name: str):
    query = parse_query(EntriesQuery)
    session = db_session()
    list_def = get_list(name, session=session)
    after = decode_cursor(query.cursor, key="after", kind=str)
    rows = list_entries_page(list_def, limit=query.limit + 1, after=after, q=query.q, source=query.source, session=session)
    page, more = rows[:query.limit], len(rows) > query.limit
    return {"items": [entry_json(row) for row in page], "next_cursor": encode_cursor({"after": page[-1].value}) if more else None}


@bp.delete("/<name>")
@requires_scope("admin")
def remove(name: str):
    session = db_session()
    list_def = get_list(name, session=session)
    committed(lambda: delete_list(list_def, actor=actor(), session=session), session=session, conflict=CONCURRENT)
    return "", 204


@bp.post("/<name>/entries")
@requires_scope("admin")
def add_entries(name: str):
    if request.mimetype in ("text/plain", "text/csv"):
        return upload_entries(name, is_csv=request.mimetype == "text/csv")
    body = parse(EntriesIn, read_json())
    session = db_session()
    list_def = get_list(name, session=session)
    values = normalised(list_def, [Located(f"values[{i}]", value) for i, value in enumerate(body.values)])
    added, updated = committed(lambda: add_list_entries(
        list_def, values, source=key_source(), actor=actor(), reason=body.reason, expires_at=body.expires_at, session=session
    ), session=session, conflict=CONCURRENT)
    return {"added": added, "updated": updated}


def upload_entries(name: str, *, is_csv: bool):
    """A text or CSV file (the `verify lists import` formats); a bad line is named by its number."""
    query = parse_query(UploadQuery)
    expires_at = parse_rfc3339(query.expires_at) if query.expires_at else None
    rows = uploaded_rows(decoded_text(), is_csv=is_csv, reason=query.reason, expires_at=expires_at)
    session = db_session()
    list_def = get_list(name, session=session)
    values = normalised(list_def, [row.located for row in rows])
    entries = [(value, row.reason, row.expires_at) for value, row in zip(values, rows)]
    added, updated = committed(lambda: import_list_entries(
        list_def, entries, source=upload_source(query.source), actor=actor(), session=session
    ), session=session, conflict=CONCURRENT)
    return {"added": added, "updated": updated}


@bp.put("/<name>/entries")
@requires_scope("admin")
def replace_entries(name: str):
    located, reason = replacement_values()
    session = db_session()
    list_def = get_list(name, session=session)
    values = normalised(list_def, located)
    added, removed, total = committed(lambda: replace_list_entries(
        list_def, values, source=key_source(), actor=actor(), reason=reason, session=session
    ), session=session, conflict=CONCURRENT)
    return {"added": added, "removed": removed, "total": total}


@bp.delete("/<name>/entries")
@requires_scope("admin")
def remove_entries(name: str):
    query = parse_query(RemoveQuery)
    if (query.value is None) == (query.source is None):
        problem = {"field": "value", "message": "give exactly one of `value` and `source`"}
        raise InvalidInput("give exactly one of `value` and `source`", errors=[problem])
    session = db_session()
    list_def = get_list(name, session=session)
    if query.source is not None:
        committed(lambda: delete_list_source(list_def, query.source, actor=actor(), session=session), session=session, conflict=CONCURRENT)
        return "", 204
    try:
        value = normaliser(list_def.kind, rules=services().assessor.providers.mail_rules)(query.value)
    except ValueInvalid as error:
        raise InvalidInput(f"not a value of kind {list_def.kind}", errors=[{"field": "value", "message": str(error)}]) from None
    committed(lambda: delete_list_value(list_def, value, actor=actor(), session=session), session=session, conflict=CONCURRENT)
    return "", 204
