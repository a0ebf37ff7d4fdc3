"""Each text field's limit is declared once (verify/store/lengths.py): the contract, the request
schemas and the columns agree, so a value at the limit is stored and one past it is a 422 on
every backend, never a 500 from a column too short on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from verify.engine.list_values import LIST_NAME as LIST_NAME_PATTERN
from verify.store import lengths
from verify.store.feeds import Feed
from verify.store.models import ApiKey, Assessment, AuditEvent, Feedback, ListDef, ListEntry, PolicyVersion

CONTRACT = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())


def schema_property(schema: str, name: str) -> dict:
    return CONTRACT["components"]["schemas"][schema]["properties"][name]


def query_parameter(path: str, method: str, name: str) -> dict:
    operation = CONTRACT["paths"][path][method]
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = CONTRACT["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        if parameter["name"] == name:
            return parameter["schema"]
    raise KeyError(name)


def body_schema(path: str, method: str) -> str:
    ref = CONTRACT["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


CONTRACT_LIMITS = [
    # (where in openapi.yaml, the declared limit)
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "email"), lengths.EMAIL),
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "phone"), lengths.PHONE),
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "ip"), lengths.IP),
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "device_id"), lengths.DEVICE_ID),
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "user_agent"), lengths.USER_AGENT),
    (lambda: schema_property(body_schema("/v1/assessments", "post"), "external_id"), lengths.EXTERNAL_ID),
    (lambda: query_parameter("/v1/assessments", "post", "Idempotency-Key"), lengths.IDEMPOTENCY_KEY),
    (lambda: query_parameter("/v1/assessments", "get", "email"), lengths.EMAIL),
    (lambda: query_parameter("/v1/assessments", "get", "email_domain"), lengths.DOMAIN),
    (lambda: query_parameter("/v1/assessments", "get", "ip"), lengths.IP),
    (lambda: query_parameter("/v1/assessments", "get", "phone"), lengths.PHONE),
    (lambda: query_parameter("/v1/assessments", "get", "device_id"), lengths.DEVICE_ID),
    (lambda: schema_property(body_schema("/v1/assessments/{assessment_id}/feedback", "post"), "note"), lengths.NOTE),
    (lambda: schema_property(body_schema("/v1/erasure", "post"), "email"), lengths.EMAIL),
    (lambda: schema_property(body_schema("/v1/erasure", "post"), "phone"), lengths.PHONE),
    (lambda: schema_property(body_schema("/v1/erasure", "post"), "external_id"), lengths.EXTERNAL_ID),
    (lambda: schema_property(body_schema("/v1/lists", "post"), "description"), lengths.LIST_DESCRIPTION),
    (lambda: schema_property(body_schema("/v1/lists/{name}/entries", "post"), "values")["items"], lengths.LIST_VALUE),
    (lambda: schema_property(body_schema("/v1/lists/{name}/entries", "post"), "reason"), lengths.LIST_REASON),
    (lambda: schema_property(body_schema("/v1/lists/{name}/entries", "put"), "values")["items"], lengths.LIST_VALUE),
    (lambda: schema_property(body_schema("/v1/lists/{name}/entries", "put"), "reason"), lengths.LIST_REASON),
    (lambda: query_parameter("/v1/lists/{name}/entries", "get", "q"), lengths.LIST_VALUE),
    (lambda: query_parameter("/v1/lists/{name}/entries", "get", "source"), lengths.ENTRY_SOURCE),
    (lambda: query_parameter("/v1/lists/{name}/entries", "delete", "value"), lengths.LIST_VALUE),
    (lambda: query_parameter("/v1/lists/{name}/entries", "delete", "source"), lengths.ENTRY_SOURCE),
]


@pytest.mark.parametrize("where, limit", CONTRACT_LIMITS, ids=[str(i) for i in range(len(CONTRACT_LIMITS))])
def test_the_contract_declares_the_limits_the_store_declares(where, limit):
    assert where()["maxLength"] == limit


COLUMNS = [
    (Assessment, "email", lengths.EMAIL),
    (Assessment, "email_canonical", lengths.EMAIL),
    (Assessment, "email_domain", lengths.DOMAIN),
    (Assessment, "phone", lengths.PHONE),
    (Assessment, "ip", lengths.IP),
    (Assessment, "device_id", lengths.DEVICE_ID),
    (Assessment, "user_agent", lengths.USER_AGENT),
    (Assessment, "external_id", lengths.EXTERNAL_ID),
    (Assessment, "idempotency_key", lengths.IDEMPOTENCY_KEY),
    (Feedback, "note", lengths.NOTE),
    (Feedback, "actor", lengths.KEY_NAME),
    (ApiKey, "name", lengths.KEY_NAME),
    (PolicyVersion, "created_by", lengths.KEY_NAME),
    (AuditEvent, "actor", lengths.KEY_NAME),
    (ListDef, "name", lengths.LIST_NAME),
    (ListDef, "description", lengths.LIST_DESCRIPTION),
    (ListEntry, "value", lengths.LIST_VALUE),
    (ListEntry, "reason", lengths.LIST_REASON),
    (ListEntry, "source", lengths.ENTRY_SOURCE),
    (Feed, "name", lengths.LIST_NAME),
    (Feed, "url", lengths.FEED_URL),
    (Feed, "etag", lengths.FEED_ETAG),
    (Feed, "last_modified", lengths.FEED_LAST_MODIFIED),
    (Feed, "last_error", lengths.FEED_ERROR),
]


@pytest.mark.parametrize("table, column, limit", COLUMNS, ids=[f"{t.__name__}.{c}" for t, c, _ in COLUMNS])
def test_the_columns_hold_what_the_store_declares(table, column, limit):
    assert table.__table__.c[column].type.length == limit


# -- at the limit and one past it, on each backend ------------------------------------------

SIGNUP_FIELDS = [
    ("email", lengths.EMAIL, "7"),  # too long to be an address: stored as sent, denied as invalid
    ("phone", lengths.PHONE, "7"),
    ("device_id", lengths.DEVICE_ID, "d"),
    ("user_agent", lengths.USER_AGENT, "u"),
    ("external_id", lengths.EXTERNAL_ID, "e"),
]


@pytest.mark.parametrize("field, limit, char", SIGNUP_FIELDS, ids=[f for f, _, _ in SIGNUP_FIELDS])
def test_signup_fields_at_their_limit_are_stored_and_past_it_are_422(client, assess_headers, field, limit, char):
    body = {"email": "limits@example-mail.com", field: char * limit}
    created = client.post("/v1/assessments", json=body, headers=assess_headers)
    assert created.status_code == 201
    assert created.get_json()["request"][field] == char * limit
    body[field] += char
    refused = client.post("/v1/assessments", json=body, headers=assess_headers)
    assert refused.status_code == 422 and field in {e["field"] for e in refused.get_json()["errors"]}


def test_an_email_that_grows_past_its_limit_in_nfc_is_422(client, assess_headers):
    # U+1D160 (a musical note) is a composition exclusion: NFC writes it as three code points,
    # so 200 characters as sent would be stored as 600.
    body = {"email": "\U0001D160" * 200}
    response = client.post("/v1/assessments", json=body, headers=assess_headers)
    assert response.status_code == 422 and "email" in {e["field"] for e in response.get_json()["errors"]}


def test_an_idempotency_key_at_its_limit_is_kept_and_past_it_is_422(client, assess_headers):
    body = {"email": "key-limit@example-mail.com"}
    key = "k" * lengths.IDEMPOTENCY_KEY
    first = client.post("/v1/assessments", json=body, headers={**assess_headers, "Idempotency-Key": key})
    again = client.post("/v1/assessments", json=body, headers={**assess_headers, "Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    past = client.post("/v1/assessments", json=body, headers={**assess_headers, "Idempotency-Key": key + "k"})
    assert past.status_code == 422


def test_a_feedback_note_at_its_limit_is_stored_and_past_it_is_422(client, assess_headers):
    assessment_id = client.post("/v1/assessments", json={"email": "note@example-mail.com"}, headers=assess_headers).get_json()["id"]
    path = f"/v1/assessments/{assessment_id}/feedback"
    stored = client.post(path, json={"label": "fraud", "note": "n" * lengths.NOTE}, headers=assess_headers)
    assert stored.status_code == 201 and stored.get_json()["note"] == "n" * lengths.NOTE
    refused = client.post(path, json={"label": "fraud", "note": "n" * (lengths.NOTE + 1)}, headers=assess_headers)
    assert refused.status_code == 422


ERASURE_FIELDS = [("email", lengths.EMAIL), ("phone", lengths.PHONE), ("external_id", lengths.EXTERNAL_ID)]


@pytest.mark.parametrize("field, limit", ERASURE_FIELDS, ids=[f for f, _ in ERASURE_FIELDS])
def test_erasure_fields_at_their_limit_erase_and_past_it_are_422(client, assess_headers, admin_headers, field, limit):
    value = "7" * limit
    body = {"email": "erase-me@example-mail.com", field: value}
    assert client.post("/v1/assessments", json=body, headers=assess_headers).status_code == 201
    erased = client.post("/v1/erasure", json={field: value}, headers=admin_headers)
    assert erased.status_code == 200 and erased.get_json()["erased"] == 1
    refused = client.post("/v1/erasure", json={field: value + "7"}, headers=admin_headers)
    assert refused.status_code == 422 and field in {e["field"] for e in refused.get_json()["errors"]}


SEARCH_FILTERS = [("email", lengths.EMAIL), ("device_id", lengths.DEVICE_ID), ("phone", lengths.PHONE), ("ip", lengths.IP)]


@pytest.mark.parametrize("field, limit", SEARCH_FILTERS, ids=[f for f, _ in SEARCH_FILTERS])
def test_search_filters_past_their_limit_are_422(client, admin_headers, field, limit):
    response = client.get("/v1/assessments", query_string={field: "7" * (limit + 1)}, headers=admin_headers)
    assert response.status_code == 422 and field in {e["field"] for e in response.get_json()["errors"]}


def test_a_search_for_an_email_at_its_limit_is_answered(client, assess_headers, admin_headers):
    client.post("/v1/assessments", json={"email": "7" * lengths.EMAIL}, headers=assess_headers)
    response = client.get("/v1/assessments", query_string={"email": "7" * lengths.EMAIL}, headers=admin_headers)
    assert response.status_code in (200, 422)  # an invalid address is no filter, but never a 500
    device = client.get("/v1/assessments", query_string={"device_id": "d" * lengths.DEVICE_ID}, headers=admin_headers)
    assert device.status_code == 200


def test_a_list_description_at_its_limit_is_stored_and_past_it_is_422(client, admin_headers):
    created = client.post(
        "/v1/lists", json={"name": "long-notes", "kind": "email", "action": "deny", "description": "d" * lengths.LIST_DESCRIPTION},
        headers=admin_headers,
    )
    assert created.status_code == 201
    refused = client.post(
        "/v1/lists", json={"name": "longer-notes", "kind": "email", "action": "deny", "description": "d" * (lengths.LIST_DESCRIPTION + 1)},
        headers=admin_headers,
    )
    assert refused.status_code == 422


def test_a_list_name_at_its_limit_is_stored_and_past_it_is_422(client, admin_headers):
    body = {"kind": "email", "action": "deny"}
    assert client.post("/v1/lists", json={**body, "name": "n" * lengths.LIST_NAME}, headers=admin_headers).status_code == 201
    assert client.post("/v1/lists", json={**body, "name": "m" * (lengths.LIST_NAME + 1)}, headers=admin_headers).status_code == 422


def test_a_list_reason_at_its_limit_is_stored_and_past_it_is_422(client, admin_headers):
    path = "/v1/lists/blocked-domains/entries"
    stored = client.post(path, json={"values": ["reason.example"], "reason": "r" * lengths.LIST_REASON}, headers=admin_headers)
    assert stored.status_code == 200
    refused = client.post(path, json={"values": ["reason.example"], "reason": "r" * (lengths.LIST_REASON + 1)}, headers=admin_headers)
    assert refused.status_code == 422


def test_list_values_past_their_limit_are_422(client, admin_headers):
    path = "/v1/lists/blocked-domains/entries"
    for method in (client.post, client.put):
        response = method(path, json={"values": ["v" * (lengths.LIST_VALUE + 1)]}, headers=admin_headers)
        assert response.status_code == 422 and "values.0" in {e["field"] for e in response.get_json()["errors"]}


def test_the_longest_list_value_a_kind_takes_is_stored(client, admin_headers):
    device = "d" * lengths.DEVICE_ID
    created = client.post("/v1/lists", json={"name": "long-devices", "kind": "device", "action": "deny"}, headers=admin_headers)
    assert created.status_code == 201
    stored = client.post("/v1/lists/long-devices/entries", json={"values": [device]}, headers=admin_headers)
    assert stored.status_code == 200 and stored.get_json()["added"] == 1


ENTRY_QUERIES = [("get", "q", lengths.LIST_VALUE), ("get", "source", lengths.ENTRY_SOURCE), ("delete", "source", lengths.ENTRY_SOURCE)]


@pytest.mark.parametrize("method, field, limit", ENTRY_QUERIES, ids=[f"{m}-{f}" for m, f, _ in ENTRY_QUERIES])
def test_entry_queries_at_their_limit_are_answered_and_past_it_are_422(client, admin_headers, method, field, limit):
    call = getattr(client, method)
    at_limit = call("/v1/lists/blocked-domains/entries", query_string={field: "s" * limit}, headers=admin_headers)
    assert at_limit.status_code in (200, 404)  # nothing matches, and nothing breaks
    past = call("/v1/lists/blocked-domains/entries", query_string={field: "s" * (limit + 1)}, headers=admin_headers)
    assert past.status_code == 422


def test_the_list_name_pattern_allows_what_the_column_holds():
    assert LIST_NAME_PATTERN.fullmatch("n" * lengths.LIST_NAME) and not LIST_NAME_PATTERN.fullmatch("n" * (lengths.LIST_NAME + 1))


def test_an_idempotency_key_with_a_nul_is_422(client, assess_headers):
    # PostgreSQL text cannot hold U+0000: refused like a NUL in any other string.
    response = client.post("/v1/assessments", json={"email": "nul-key@example-mail.com"}, headers={**assess_headers, "Idempotency-Key": "k\x00"})
    assert response.status_code == 422
