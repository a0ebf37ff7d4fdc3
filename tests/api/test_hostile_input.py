"""Input an attacker chooses: out-of-range times and integers, forged cursors, NaN in JSON,
query-parameter errors, oversized request lines and headers. Never a 500; always problem+json."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

SIGNUP = "/v1/assessments"


def forged(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def fields(response) -> list[str]:
    return [item["field"] for item in response.get_json().get("errors", [])]


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


# -- timestamps ----------------------------------------------------------------------------

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
NOT_RFC_3339 = [
    "2026-W48-3T10:00:00Z",  # ISO 8601 week date
    "20261202T101010Z",  # ISO 8601 basic format
    "2026-12-02T10:10:10",  # no offset
    "2026-12-02",  # no time
    "2026-12-02 10:10:10Z",  # space for T
    "2026-12-02T10:10Z",  # no seconds
    "2026-12-02T10:10:10+0100",  # offset without colon
    "2026-12-02T10:10:10.Z",  # empty fraction
    "２０２６-12-02T10:10:10Z",  # non-ASCII digits
    "2026-12-02T10:10:60Z",  # a leap second datetime cannot hold
]


@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_RFC_3339)
def test_occurred_at_out_of_range_or_not_rfc_3339_is_422(client, assess_headers, value):
    response = client.post(SIGNUP, json={"email": "time@example-mail.com", "occurred_at": value}, headers=assess_headers)
    assert_problem(response, 422)
    assert fields(response) == ["occurred_at"]


@pytest.mark.parametrize("value", ["2026-01-31T12:00:00Z", "2026-01-31t12:00:00.123456789z", "2026-01-31T13:30:00+01:30"])
def test_occurred_at_in_rfc_3339_is_accepted(client, assess_headers, value):
    response = client.post(SIGNUP, json={"email": "time@example-mail.com", "occurred_at": value}, headers=assess_headers)
    assert response.status_code == 201
    assert response.get_json()["occurred_at"].startswith("2026-01-31T12:00:00")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])
def test_signups_before_the_epoch_are_422_not_an_overflow(client, assess_headers, value):
    response = client.post(SIGNUP, json={"email": "time@example-mail.com", "occurred_at": value}, headers=assess_headers)
    assert_problem(response, 422)
    assert fields(response) == ["occurred_at"]


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_RFC_3339)
def test_search_times_out_of_range_or_not_rfc_3339_are_422(client, admin_headers, name, value):
    response = client.get(f"{SIGNUP}?{name}={quote(value)}", headers=admin_headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == name and body["errors"][0]["in"] == "query"
    assert name in body["detail"]


@pytest.fixture
def block_list(client, admin_headers) -> str:
    response = client.post("/v1/lists", json={"name": "hostile", "kind": "email", "action": "deny"}, headers=admin_headers)
    assert response.status_code == 201
    return "/v1/lists/hostile/entries"


@pytest.mark.parametrize("value", OUT_OF_RANGE[1:] + NOT_RFC_3339)
def test_list_entry_expiry_out_of_range_or_not_rfc_3339_is_422(client, admin_headers, block_list, value):
    response = client.post(block_list, json={"values": ["a@example.com"], "expires_at": value}, headers=admin_headers)
    assert_problem(response, 422)
    assert fields(response) == ["expires_at"]


def test_list_entry_expiry_far_ahead_in_utc_is_kept(client, admin_headers, block_list):
    response = client.post(block_list, json={"values": ["a@example.com"], "expires_at": "9999-12-31T23:59:59Z"}, headers=admin_headers)
    assert response.status_code == 200
    shown = client.get(block_list, headers=admin_headers).get_json()["items"]
    assert shown[0]["expires_at"].startswith("9999-12-31T23:59:59")


# -- forged cursors and limits ------------------------------------------------------------

SEARCH_CURSORS = [
    forged(["9999-12-31T23:59:59-01:00", 1]),
    forged(["0001-01-01T00:00:00+01:00", 1]),
    forged(["2026-W48-3T10:00:00Z", 1]),
    forged(["2026-01-01T00:00:00Z", 2**70]),
    forged(["2026-01-01T00:00:00Z", -1]),
    forged(["2026-01-01T00:00:00Z", "1"]),
    forged(["2026-01-01T00:00:00Z", 1.5]),
    forged({"at": 1}),
    "not-a-cursor!",
    "é",
]


@pytest.mark.parametrize("cursor", SEARCH_CURSORS)
def test_forged_search_cursors_are_422(client, admin_headers, cursor):
    body = assert_problem(client.get(f"{SIGNUP}?cursor={quote(cursor)}", headers=admin_headers), 422)
    assert body["errors"][0]["field"] == "cursor" and body["errors"][0]["in"] == "query"


ENTRY_CURSORS = [forged({"after": 2**70}), forged({"after": "\ud800"}), forged({"after": None}), forged([1]), "!!"]


@pytest.mark.parametrize("cursor", ENTRY_CURSORS)
def test_forged_list_entry_cursors_are_422(client, admin_headers, block_list, cursor):
    body = assert_problem(client.get(f"{block_list}?cursor={quote(cursor)}", headers=admin_headers), 422)
    assert body["errors"][0]["field"] == "cursor" and body["errors"][0]["in"] == "query"


AUDIT_CURSORS = [forged({"before": 2**70}), forged({"before": 2**63}), forged({"before": -1}), forged({"before": "12"}), forged({"before": 1e300})]


@pytest.mark.parametrize("cursor", AUDIT_CURSORS)
def test_forged_audit_cursors_are_422(client, admin_headers, cursor):
    body = assert_problem(client.get(f"/v1/audit?cursor={quote(cursor)}", headers=admin_headers), 422)
    assert body["errors"][0]["field"] == "cursor" and body["errors"][0]["in"] == "query"


@pytest.mark.parametrize("path", [SIGNUP, "/v1/audit", "/v1/lists/hostile/entries"])
@pytest.mark.parametrize("limit", ["0", "-1", "100001", str(2**70), "1e3", "ten", ""])
def test_limits_out_of_range_name_the_parameter(client, admin_headers, block_list, path, limit):
    body = assert_problem(client.get(f"{path}?limit={limit}", headers=admin_headers), 422)
    assert body["errors"] == [{"field": "limit", "in": "query", "message": body["errors"][0]["message"]}]
    assert "limit" in body["detail"] and "body" not in body["detail"]


def test_unknown_query_parameters_are_named(client, admin_headers):
    body = assert_problem(client.get(f"{SIGNUP}?colour=red", headers=admin_headers), 422)
    assert body["errors"][0]["field"] == "colour" and body["errors"][0]["in"] == "query"


def test_an_unencoded_plus_in_an_email_filter_gets_a_hint(client, admin_headers):
    body = assert_problem(client.get(f"{SIGNUP}?email=alice+tag@example.com", headers=admin_headers), 422)
    assert body["errors"][0]["field"] == "email" and body["errors"][0]["in"] == "query"
    assert "%2B" in body["errors"][0]["message"] and "%2B" in body["detail"]


def test_an_encoded_plus_in_an_email_filter_is_read(client, admin_headers):
    assert client.get(f"{SIGNUP}?email=alice%2Btag@example.com", headers=admin_headers).status_code == 200


# -- NaN and Infinity ----------------------------------------------------------------------

@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_in_metadata_are_422_naming_the_field(client, assess_headers, constant):
    raw = '{"email": "nan@example-mail.com", "metadata": {"x": [1, %s]}}' % constant
    response = client.post(SIGNUP, data=raw, content_type="application/json", headers=assess_headers)
    body = assert_problem(response, 422)
    assert fields(response) == ["metadata.x.1"]
    assert "metadata.x.1" in body["detail"]


def test_non_finite_numbers_are_refused_on_every_route(client, admin_headers, block_list):
    response = client.post(block_list, data='{"values": ["a@example.com"], "reason": NaN}', content_type="application/json", headers=admin_headers)
    assert_problem(response, 422)
    assert fields(response) == ["reason"]


def test_large_but_finite_numbers_in_metadata_are_stored(client, assess_headers):
    raw = '{"email": "big@example-mail.com", "metadata": {"x": 1e300, "y": -2.5}}'
    response = client.post(SIGNUP, data=raw, content_type="application/json", headers=assess_headers)
    assert response.status_code == 201
    assert response.get_json()["request"]["metadata"] == {"x": 1e300, "y": -2.5}


def test_metadata_with_an_integer_past_64_bits_is_stored_as_sent(client, assess_headers):
    metadata = {"big": 2**70, "small": -(2**65), "nested": [2**64]}
    answer = client.post("/v1/assessments", json={"email": "big.numbers@example-mail.com", "metadata": metadata}, headers=assess_headers)
    assert answer.status_code == 201
    stored = client.get(f"/v1/assessments/{answer.get_json()['id']}", headers=assess_headers).get_json()
    assert stored["request"]["metadata"] == metadata
