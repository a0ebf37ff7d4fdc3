"""Responses written by orjson mean what Flask's own provider wrote, and fail where it failed."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from verify.api.json_encoding import OrjsonProvider


@dataclasses.dataclass
class Point:
    x: int
    when: date


def providers(*, debug: bool = False, sort_keys: bool = False) -> tuple[Flask, DefaultJSONProvider, OrjsonProvider]:
    """Both providers on one app (they hold it by a weak reference: keep it)."""
    app = Flask(__name__)
    app.debug = debug
    reference, fast = DefaultJSONProvider(app), OrjsonProvider(app)
    reference.sort_keys = fast.sort_keys = sort_keys
    return app, reference, fast


VALUES = [
    {"verdict": "allow", "score": 12.5, "reasons": [{"code": "email.free_provider", "points": 5}], "ok": True, "none": None},
    {"when": datetime(2026, 12, 2, 10, 0, 0, tzinfo=timezone.utc), "day": date(2026, 12, 2)},
    {"id": uuid.UUID("123e4567-e89b-12d3-a456-426614174000"), "amount": Decimal("12.50")},
    {"point": Point(1, date(2026, 12, 2))},
    {1: "int key", None: "none key", 1.5: "float key", True: "bool key"},
    {"big": 2**70, "negative": -(2**65)},
    {"text": "caf\u00e9 \u4f8b \U0001f600", "half": "\ud800"},
    ["a", "list", 1, 2],
]


@pytest.mark.parametrize("value", VALUES, ids=["plain", "dates", "uuid-decimal", "dataclass", "non-str-keys", "big-ints", "unicode", "list"])
def test_same_document_as_flasks_provider(value):
    app, reference, fast = providers()
    assert json.loads(fast.dumps(value)) == json.loads(reference.dumps(value))
    with app.app_context():
        written, expected = fast.response(value), reference.response(value)
    assert written.get_json() == expected.get_json()
    assert written.mimetype == "application/json" and written.get_data().endswith(b"\n")


def test_keys_in_the_order_built_unless_sorted():
    value = {"b": 1, "a": {"z": 1, "y": 2}}
    _, _, fast = providers()
    assert fast.dumps(value) == '{"b":1,"a":{"z":1,"y":2}}'
    _, _, sorting = providers(sort_keys=True)
    assert sorting.dumps(value) == '{"a":{"y":2,"z":1},"b":1}'


@pytest.mark.parametrize("value", [{"t": time(10, 0)}, {"o": object()}, {(1, 2): "tuple key"}], ids=["time", "object", "tuple-key"])
def test_what_flask_refused_is_still_refused(value):
    app, reference, fast = providers()
    with pytest.raises(TypeError):
        reference.dumps(value)
    with pytest.raises(TypeError):
        fast.dumps(value)
    with app.app_context(), pytest.raises(TypeError):
        fast.response(value)


def test_debug_answers_are_indented_as_before():
    app, reference, fast = providers(debug=True)
    with app.app_context():
        assert fast.response({"a": [1]}).get_data() == reference.response({"a": [1]}).get_data()


def test_the_service_answers_through_orjson(client, assess_headers):
    assert isinstance(client.application.json, OrjsonProvider)
    answer = client.post("/v1/assessments", json={"email": "b\u00e9atrice@example-mail.com"}, headers=assess_headers)
    assert answer.status_code == 201
    # UTF-8, where Flask's provider wrote \u00e9; keys in the order the view built them, not sorted.
    assert "b\u00e9atrice".encode() in answer.get_data() and b"\\u00e9" not in answer.get_data()
    assert list(answer.get_json())[:3] == ["id", "verdict", "score"]
