"""Reading request bodies: media type, JSON syntax, nesting depth, then the schema."""

from __future__ import annotations

import json
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


def read_json() -> Any:
    """The body as JSON; 415 for another media type, 400 for broken JSON or deep nesting."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedRequest("the body is not valid JSON") from None
    if _depth(document) > MAX_DEPTH:
        raise MalformedRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep")
    return document


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append({"field": where, "message": item["msg"]})
    return problems


def parse(model: type[Model], document: Any) -> Model:
    """Validate a JSON document against a request model; 422 names each bad field."""
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object", errors=[{"field": "body", "message": "must be an object"}])
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidInput("the body does not match the schema", errors=field_errors(error)) from None
