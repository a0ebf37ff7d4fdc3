"""JSON logs with request ids, and no raw email, phone number or API key in any line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask.testing import FlaskClient

from verify import logs

EMAILS = ["Jane.Doe+promo@gmail.com", "jean-luc@example-mail.com", "béatrice@exämple.org"]
PHONES = ["+14155550123", "+44 20 7946 0958"]


@pytest.fixture
def captured():
    """Every log line of the process at DEBUG, through the service's own JSON handler."""
    stream = io.StringIO()
    handler = logs.json_handler(stream)
    root = logging.getLogger()
    loud = {name: logging.getLogger(name).level for name in ("", "verify", "sqlalchemy.engine", "werkzeug")}
    root.addHandler(handler)
    for name in loud:
        logging.getLogger(name).setLevel(logging.DEBUG if name != "sqlalchemy.engine" else logging.INFO)
    yield stream
    root.removeHandler(handler)
    for name, level in loud.items():
        logging.getLogger(name).setLevel(level)


def test_no_personal_data_or_secret_reaches_a_log_line(app, client, keys, assess_headers, admin_headers, services, captured, monkeypatch):
    for email, phone in zip(EMAILS, PHONES + [None]):
        body = {"email": email, "phone": phone, "external_id": "acct-1"}
        assert client.post("/v1/assessments", json=body, headers={**assess_headers, "Idempotency-Key": email}).status_code == 201
    client.post("/v1/assessments", json={"email": EMAILS[0]}, headers={"Authorization": "Bearer vk_0123456789abcdef_notarealsecretatall"})
    client.post("/v1/erasure", json={"email": EMAILS[1]}, headers=admin_headers)

    # An unexpected failure whose message and traceback quote the signup.
    def explode(signup, **_):
        raise RuntimeError(f"could not store {signup.email} / {signup.phone} for {keys['assess']}")

    monkeypatch.setattr(services.assessor, "assess", explode)
    plain = FlaskClient(app)  # a 500 is not in the contract; this client does not check it
    assert plain.post("/v1/assessments", json={"email": EMAILS[0], "phone": PHONES[0]}, headers=assess_headers).status_code == 500

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("exception") for line in lines), "the failure should have been logged with its traceback"
    assert any(line["logger"].startswith("sqlalchemy") for line in lines), "statements and their parameters were logged"
    for secret in [*EMAILS, *(e.lower() for e in EMAILS), *PHONES, "4155550123", "2079460958", *keys.values(), "notarealsecretatall"]:
        assert secret not in text
    # Masked, not dropped: the same address always gives the same fingerprint, so lines still correlate.
    assert f"[email:{logs.fingerprint(EMAILS[0])}]" in text


def test_every_line_is_json_with_the_request_id(client, assess_headers, captured):
    response = client.post("/v1/assessments", json={"email": "x@example-mail.com"}, headers={**assess_headers, "X-Request-Id": "req-42.a:b"})
    assert response.headers["X-Request-Id"] == "req-42.a:b"
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "verify.requests"]
    assert access and access[-1]["request_id"] == "req-42.a:b"
    assert access[-1]["route"] == "/v1/assessments" and access[-1]["status"] == 201 and access[-1]["key"] == "backend"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "two words", "<script>", "caf\u00e9"], ids=["absent", "empty", "too-long", "space", "markup", "non-ascii"])
def test_unsafe_or_missing_request_ids_are_replaced(client, sent):
    headers = {} if sent is None else {"X-Request-Id": sent}
    response = client.get("/healthz", headers=headers)
    generated = response.headers["X-Request-Id"]
    assert generated != sent and len(generated) == 32 and generated.isalnum()
    assert client.get("/healthz").headers["X-Request-Id"] != generated


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("signup from a.b@c.io failed", "a.b@c.io"),
        ("call +1 (415) 555-0123 now", "555-0123"),
        ("Authorization: Bearer abc.def", "abc.def"),
        ("key vk_00ff00ff00ff00ff_Zx-9_y leaked", "Zx-9_y"),
    ],
)
def test_redact(text, hidden):
    assert hidden not in logs.redact(text)
