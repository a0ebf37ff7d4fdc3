"""Reading requests: the body's media type, JSON syntax, nesting depth and numbers, then the
schema; and query strings, whose errors name the parameter."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from verify.errors import InvalidInput, MalformedRequest, UnsupportedMediaType

MAX_DEPTH = 16
Model = TypeVar("Model", bound=BaseModel)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class NonFinite:
    """Where the body held NaN, Infinity or a number too large for a double (1e400)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _number(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def _non_finite(value: Any, where: str = "") -> tuple[str, str] | None:
    """The path and text of the first non-finite number in a document, if any."""
    if isinstance(value, NonFinite):
        return where or "body", value.text
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if found := _non_finite(child, f"{where}.{key}" if where else str(key)):
            return found
    return None


def read_json() -> Any:
    """The body as JSON; 415 for another media type, 400 for broken JSON or deep nesting,
    422 for NaN or Infinity, which JSON (RFC 8259) does not have and PostgreSQL cannot store."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        document = json.loads(raw, parse_constant=NonFinite, parse_float=_number)
    except (ValueError, RecursionError):
        raise MalformedRequest("the body is not valid JSON") from None
    if _depth(document) > MAX_DEPTH:
        raise MalformedRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep")
    if found := _non_finite(document):
        where, text = found
        message = f"{text} is not a finite number (JSON has no NaN or Infinity); send a finite number or a string"
        raise InvalidInput(f"{where}: {message}", errors=[{"field": where, "message": message}])
    return document


def field_errors(error: ValidationError, *, location: str | None = None) -> list[dict[str, str]]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or (location or "body")
        problem = {"field": where, "message": item["msg"]}
        if location:
            problem["in"] = location
        problems.append(problem)
    return problems


def parse(model: type[Model], document: Any) -> Model:
    """Validate a JSON document against a request model; 422 names each bad field."""
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object", errors=[{"field": "body", "message": "must be an object"}])
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidInput("the body does not match the schema", errors=field_errors(error)) from None


def query_error(name: str, message: str) -> InvalidInput:
    """422 for one bad query parameter, named in the detail and in `errors`."""
    return InvalidInput(f"query parameter `{name}`: {message}", errors=[{"field": name, "in": "query", "message": message}])


def parse_query(model: type[Model]) -> Model:
    """Validate the query string against a model; 422 names each bad parameter."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        problems = field_errors(error, location="query")
        named = ", ".join(f"`{problem['field']}` ({problem['message']})" for problem in problems)
        raise InvalidInput(f"query parameter {named}", errors=problems) from None
