"""Request limits: body size (with and without Content-Length), strings, metadata, and per-key rates."""

from __future__ import annotations

import io
import json
import os
import uuid

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.conftest import bearer
from tests.support.contract import ContractClient
from verify.api import limits
from verify.app import create_app
from verify.settings import SettingsError
from verify.store.keys import create_api_key, revoke_api_key

REDIS_URL = os.environ.get("VERIFY_TEST_REDIS_URL")


def chunked_post(app, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """POST without Content-Length, as gunicorn hands over a chunked body."""
    environ = EnvironBuilder(path=path, method="POST", headers={**headers, "Content-Type": "application/json"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input"] = io.BytesIO(body)
    environ["wsgi.input_terminated"] = True
    chunks, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(chunks))


def test_chunked_body_over_64_kib_is_413(app, assess_headers):
    body = json.dumps({"email": "a@example-mail.com", "user_agent": "x" * 70_000}).encode()
    status, problem = chunked_post(app, "/v1/assessments", body, assess_headers)
    assert status == 413 and problem["status"] == 413


def test_chunked_body_within_the_limit_is_read(app, assess_headers):
    status, created = chunked_post(app, "/v1/assessments", json.dumps({"email": "chunked@example-mail.com"}).encode(), assess_headers)
    assert status == 201 and created["verdict"] == "allow"


def test_erasure_body_over_64_kib_is_413(client, admin_headers):
    assert client.post("/v1/erasure", json={"external_id": "x" * 70_000}, headers=admin_headers).status_code == 413


@pytest.mark.parametrize("field, size", [("email", 513), ("phone", 65), ("external_id", 257)])
def test_erasure_strings_are_bounded(client, admin_headers, field, size):
    response = client.post("/v1/erasure", json={field: "7" * size}, headers=admin_headers)
    assert response.status_code == 422 and field in {e["field"] for e in response.get_json()["errors"]}


@pytest.mark.parametrize("field, size", [("email", 513), ("phone", 65), ("device_id", 257), ("external_id", 257)])
def test_assessment_strings_are_bounded(client, assess_headers, field, size):
    body = {"email": "a@example-mail.com", field: "7" * size}
    response = client.post("/v1/assessments", json=body, headers=assess_headers)
    assert response.status_code == 422 and field in {e["field"] for e in response.get_json()["errors"]}


def test_metadata_of_exactly_4_kib_is_accepted(client, assess_headers):
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    body = {"email": "a@example-mail.com", "metadata": {"k": "x" * (4096 - overhead)}}
    assert client.post("/v1/assessments", json=body, headers=assess_headers).status_code == 201
    body["metadata"]["k"] += "x"
    assert client.post("/v1/assessments", json=body, headers=assess_headers).status_code == 422


# -- per-key rate limits ---------------------------------------------------------------

def limited_app(settings, *, rate: str, storage: str = "memory://"):
    app = create_app(settings.with_overrides(rate_limit=rate, rate_limit_storage=storage))
    app.test_client_class = ContractClient
    return app


@pytest.fixture
def limited_keys(services) -> dict[str, str]:
    with services.database.transaction() as session:
        made = {name: create_api_key(name, ["assess", "admin"], session=session) for name in ("first", "second", "gone")}
        revoke_api_key("gone", session=session)
    return made


def signup(client, secret: str, email: str = "rate@example-mail.com"):
    return client.post("/v1/assessments", json={"email": email}, headers=bearer(secret))


def test_each_key_has_its_own_budget_and_gets_429_with_retry_after(settings, limited_keys):
    app = limited_app(settings, rate="3/minute")
    client = app.test_client()
    assert [signup(client, limited_keys["first"]).status_code for _ in range(3)] == [201] * 3
    refused = signup(client, limited_keys["first"])
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The budget is per key and spans every route.
    assert client.get("/v1/assessments/nope", headers=bearer(limited_keys["first"])).status_code == 429
    assert signup(client, limited_keys["second"]).status_code == 201
    app.extensions["verify"].database.dispose()


def test_requests_without_a_valid_key_get_401_and_spend_nobody_s_budget(settings, limited_keys):
    app = limited_app(settings, rate="2/minute")
    client = app.test_client()
    lookup = limited_keys["first"].split("_")[1]
    for headers in ({}, {"Authorization": "Bearer nope"}, bearer(f"vk_{lookup}_wrong-secret"), bearer(limited_keys["gone"])):
        for _ in range(3):
            assert client.post("/v1/assessments", json={"email": "a@b.co"}, headers=headers).status_code == 401
    assert [signup(client, limited_keys["first"]).status_code for _ in range(3)] == [201, 201, 429]
    # Operations routes are never limited.
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))
    app.extensions["verify"].database.dispose()


def test_a_malformed_rate_limit_is_refused_at_start(settings):
    with pytest.raises(SettingsError):
        create_app(settings.with_overrides(rate_limit="lots"))


def test_an_unreachable_redis_falls_back_to_limits_in_memory(settings, limited_keys):
    app = limited_app(settings, rate="2/minute", storage="redis://127.0.0.1:9/0")
    client = app.test_client()
    assert [signup(client, limited_keys["first"]).status_code for _ in range(3)] == [201, 201, 429]
    app.extensions["verify"].database.dispose()


@pytest.mark.skipif(not REDIS_URL, reason="VERIFY_TEST_REDIS_URL is not set")
def test_instances_sharing_redis_share_one_limit(settings, limited_keys, monkeypatch):
    monkeypatch.setattr(limits, "KEY_PREFIX", f"verify-test-{uuid.uuid4().hex}")  # parallel tests share the server
    one, two = (limited_app(settings, rate="4/minute", storage=REDIS_URL) for _ in range(2))
    clients = [one.test_client(), two.test_client()]
    statuses = [signup(clients[i % 2], limited_keys["first"], f"r{i}@example-mail.com").status_code for i in range(6)]
    assert statuses == [201, 201, 201, 201, 429, 429]
    assert signup(clients[0], limited_keys["second"]).status_code == 201
    for app in (one, two):
        app.extensions["verify"].database.dispose()


def test_nul_characters_are_refused_not_a_crash(client, assess_headers, admin_headers):
    # PostgreSQL text cannot hold U+0000: found by the property tests as a 500.
    response = client.post("/v1/assessments", json={"email": "a\u0000@example-mail.com"}, headers=assess_headers)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "email"
    assert client.post("/v1/erasure", json={"external_id": "x\u0000"}, headers=admin_headers).status_code == 422
    assert client.get("/v1/assessments/abc%00def", headers=assess_headers).status_code == 404
