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
from verify.engine.list_values import LIST_NAME, Located, ValueInvalid, ValuesInvalid, normalise_all, normaliser, text_lines
from verify.errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from verify.store import lengths
from verify.store.lists import (
    add_list_entries,
    create_list,
    delete_list_source,
    delete_list_value,
    get_list,
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
        if value is None:
            return None
        moment = parse_rfc3339(value)
        if moment <= datetime.now(timezone.utc):
            raise ValueError("must be in the future (an expired entry would never match)")
        return moment


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


def replacement_values() -> tuple[list[Located], str | None]:
    """The values of a PUT body: JSON `{"values": [...]}` or text/plain, one value per line."""
    if request.mimetype == "text/plain":
        try:
            body = request.get_data().decode(request.mimetype_params.get("charset", "utf-8"))
        except (UnicodeDecodeError, LookupError):
            raise MalformedRequest("the text cannot be decoded in its charset (UTF-8 by default)") from None
        lines = text_lines(body)
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


@bp.post("/<name>/entries")
@requires_scope("admin")
def add_entries(name: str):
    body = parse(EntriesIn, read_json())
    session = db_session()
    list_def = get_list(name, session=session)
    values = normalised(list_def, [Located(f"values[{i}]", value) for i, value in enumerate(body.values)])
    added, existing = committed(lambda: add_list_entries(
        list_def, values, source=key_source(), actor=actor(), reason=body.reason, expires_at=body.expires_at, session=session
    ), session=session, conflict=CONCURRENT)
    return {"added": added, "existing": existing}


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
