"""POST and GET /v1/assessments over HTTP, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import bearer


def post(client, headers, body, **extra):
    return client.post("/v1/assessments", json=body, headers={**headers, **extra})


def codes(response) -> set[str]:
    return {reason["code"] for reason in response.get_json()["reasons"]}


def test_plain_gmail_address_is_allowed(client, assess_headers):
    response = post(client, assess_headers, {"email": "alice.johnson@gmail.com"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["verdict"] == "allow"
    assert body["score"] == 0
    assert body["reasons"] == []
    assert body["signals"]["email"]["canonical"] == "alicejohnson@gmail.com"
    assert body["policy_version"] == 1


def test_disposable_address_is_denied(client, assess_headers):
    body = post(client, assess_headers, {"email": "someone@mailinator.com"}).get_json()
    assert body["verdict"] == "deny"
    assert "email.disposable" in {r["code"] for r in body["reasons"]}


def test_invalid_address_is_assessed_and_denied(client, assess_headers):
    response = post(client, assess_headers, {"email": "not-an-address"})
    assert response.status_code == 201
    assert response.get_json()["verdict"] == "deny"
    assert codes(response) == {"email.invalid"}


def test_role_account_is_reported(client, assess_headers):
    assert "email.role_account" in codes(post(client, assess_headers, {"email": "admin@example-mail.com"}))


def test_typo_domain_gets_a_suggestion_and_a_challenge(client, assess_headers):
    body = post(client, assess_headers, {"email": "bob@gmial.com"}).get_json()
    assert body["verdict"] == "challenge"
    assert "email.typo_domain" in {r["code"] for r in body["reasons"]}
    assert "email.disposable" not in {r["code"] for r in body["reasons"]}
    assert body["signals"]["email"]["typo_suggestion"] == "gmail.com"
    assert "gmail.com" in next(r["detail"] for r in body["reasons"] if r["code"] == "email.typo_domain")


def test_reasons_are_highest_points_first(client, assess_headers):
    body = post(client, assess_headers, {"email": "admin@nullmx.org"}).get_json()
    points = [reason["points"] for reason in body["reasons"]]
    assert points == sorted(points, reverse=True) and len(points) == 2


def test_stored_assessment_reads_back(client, assess_headers, admin_headers):
    created = post(client, assess_headers, {"email": "carol@example-mail.com", "external_id": "u-1"}).get_json()
    for headers in (assess_headers, admin_headers):
        response = client.get(f"/v1/assessments/{created['id']}", headers=headers)
        assert response.status_code == 200
        stored = response.get_json()
        assert stored.pop("feedback") == []  # a read shows the feedback given since
        assert (stored.pop("current_verdict"), stored.pop("revisions")) == (created["verdict"], [])  # and the revisions
        assert stored == created


def test_unknown_assessment_is_404(client, assess_headers):
    response = client.get("/v1/assessments/nope", headers=assess_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_occurred_at_is_kept_and_normalised_to_utc(client, assess_headers):
    body = post(client, assess_headers, {"email": "dan@example-mail.com", "occurred_at": "2026-01-31T13:00:00+01:00"}).get_json()
    assert body["occurred_at"] == "2026-01-31T12:00:00.000Z"
    assert body["created_at"] != body["occurred_at"]


def test_occurred_at_defaults_to_now(client, assess_headers):
    body = post(client, assess_headers, {"email": "erin@example-mail.com"}).get_json()
    occurred = datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00"))
    assert abs(occurred - datetime.now(timezone.utc)) < timedelta(seconds=30)


@pytest.mark.parametrize(
    "occurred_at",
    ["yesterday", "2026-01-31T12:00:00", (datetime.now(timezone.utc) + timedelta(days=1)).isoformat(), 1700000000],
    ids=["not-a-date", "no-offset", "too-far-ahead", "a-number"],
)
def test_bad_occurred_at_is_422(client, assess_headers, occurred_at):
    response = post(client, assess_headers, {"email": "x@example-mail.com", "occurred_at": occurred_at})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "occurred_at"


def test_slightly_future_occurred_at_is_accepted(client, assess_headers):
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).isoformat()
    assert post(client, assess_headers, {"email": "x@example-mail.com", "occurred_at": soon}).status_code == 201


# -- idempotency -------------------------------------------------------------------------

def test_idempotent_replay_returns_the_first_answer(client, assess_headers, services):
    body = {"email": "frank@example-mail.com", "ip": "198.51.100.7"}
    first = post(client, assess_headers, body, **{"Idempotency-Key": "signup-42"})
    again = post(client, assess_headers, body, **{"Idempotency-Key": "signup-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    with services.database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM assessments").scalar() == 1


def test_idempotency_key_with_another_body_is_409(client, assess_headers):
    post(client, assess_headers, {"email": "gina@example-mail.com"}, **{"Idempotency-Key": "k"})
    response = post(client, assess_headers, {"email": "other@example-mail.com"}, **{"Idempotency-Key": "k"})
    assert response.status_code == 409


def test_idempotency_keys_belong_to_their_api_key(client, keys):
    body = {"email": "hank@example-mail.com"}
    first = post(client, bearer(keys["assess"]), body, **{"Idempotency-Key": "same"})
    other = post(client, bearer(keys["both"]), body, **{"Idempotency-Key": "same"})
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.get_json()["id"] != other.get_json()["id"]


def test_overlong_idempotency_key_is_422(client, assess_headers):
    response = post(client, assess_headers, {"email": "i@example-mail.com"}, **{"Idempotency-Key": "k" * 300})
    assert response.status_code == 422


# -- request errors ----------------------------------------------------------------------

def test_body_that_is_not_json_is_400(client, assess_headers):
    response = client.post("/v1/assessments", data="{nope", headers={**assess_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["status"] == 400


def test_deeply_nested_json_is_400(client, assess_headers):
    deep = '{"email": "a@b.co", "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    response = client.post("/v1/assessments", data=deep, headers={**assess_headers, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_other_media_type_is_415(client, assess_headers):
    response = client.post("/v1/assessments", data="email=a@b.co", headers={**assess_headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


def test_body_over_64_kib_is_413(client, assess_headers):
    response = post(client, assess_headers, {"email": "a@example-mail.com", "user_agent": "x" * 70_000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "email"),
        ({"email": 42}, "email"),
        ({"email": "a@b.co", "surprise": 1}, "surprise"),
        ({"email": "a@b.co", "ip": "300.1.1.1"}, "ip"),
        ({"email": "a@b.co", "country": "USA"}, "country"),
        ({"email": "a@b.co", "user_agent": "x" * 1025}, "user_agent"),
        ({"email": "a@b.co", "metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"email": "a@b.co", "metadata": [1, 2]}, "metadata"),
    ],
    ids=["missing-email", "email-not-string", "unknown-field", "bad-ip", "bad-country", "long-user-agent", "big-metadata", "metadata-not-object"],
)
def test_schema_violations_are_422_naming_the_field(client, assess_headers, body, field):
    response = post(client, assess_headers, body)
    assert response.status_code == 422
    assert field in {error["field"] for error in response.get_json()["errors"]}


def test_array_body_is_422(client, assess_headers):
    assert post(client, assess_headers, [1, 2]).status_code == 422


def test_device_id_is_normalised_like_list_entries(client, assess_headers):
    body = post(client, assess_headers, {"email": "a@example-mail.com", "device_id": "  dev-7  "}).get_json()
    assert body["request"]["device_id"] == "dev-7"
    assert post(client, assess_headers, {"email": "a@example-mail.com", "device_id": "   "}).status_code == 422


def test_ip_is_normalised(client, assess_headers):
    body = post(client, assess_headers, {"email": "a@example-mail.com", "ip": "2001:DB8:0:0::1"}).get_json()
    assert body["request"]["ip"] == "2001:db8::1"


def test_bad_input_stores_nothing(client, assess_headers, services):
    post(client, assess_headers, {"email": "a@example-mail.com", "ip": "nope"})
    with services.database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM assessments").scalar() == 0


# -- keys and scopes ---------------------------------------------------------------------

def test_no_key_is_401(client):
    response = client.post("/v1/assessments", json={"email": "a@b.co"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401(client):
    assert post(client, bearer("vk_0000000000000000_nope"), {"email": "a@b.co"}).status_code == 401
    assert post(client, bearer("garbage"), {"email": "a@b.co"}).status_code == 401


def test_revoked_key_is_401(client, keys, services):
    from verify.store.keys import revoke_api_key

    with services.database.transaction() as session:
        revoke_api_key("backend", session=session)
    assert post(client, bearer(keys["assess"]), {"email": "a@b.co"}).status_code == 401


def test_admin_key_cannot_assess(client, admin_headers):
    assert post(client, admin_headers, {"email": "a@b.co"}).status_code == 403


def test_unknown_route_is_problem_json(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
