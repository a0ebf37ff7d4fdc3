"""/v1/lists over HTTP, on both databases: lists, entries, validation, provenance, precedence."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import bearer
from tests.support.contract import ContractClient
from verify.app import create_app
from verify.store.feeds import add_feed
from verify.store.keys import create_api_key


def lists_by_name(client, headers) -> dict[str, dict]:
    response = client.get("/v1/lists", headers=headers)
    assert response.status_code == 200
    return {item["name"]: item for item in response.get_json()["items"]}


def add(client, headers, name, values, **extra):
    return client.post(f"/v1/lists/{name}/entries", json={"values": values, **extra}, headers=headers)


def entries(client, headers, name, **params) -> list[dict]:
    response = client.get(f"/v1/lists/{name}/entries", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def assess(client, headers, **body) -> dict:
    response = client.post("/v1/assessments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def codes(assessment: dict) -> set[str]:
    return {reason["code"] for reason in assessment["reasons"]}


# -- scopes --------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("get", "/v1/lists"),
    ("post", "/v1/lists"),
    ("get", "/v1/lists/blocked-domains/entries"),
    ("post", "/v1/lists/blocked-domains/entries"),
    ("put", "/v1/lists/blocked-domains/entries"),
    ("delete", "/v1/lists/blocked-domains/entries?value=x.example"),
])
def test_list_routes_need_the_admin_scope(client, assess_headers, method, path):
    assert getattr(client, method)(path).status_code == 401
    assert getattr(client, method)(path, headers=assess_headers).status_code == 403


# -- lists ---------------------------------------------------------------------------------

def test_builtin_lists_are_listed_with_counts(client, admin_headers):
    found = lists_by_name(client, admin_headers)
    assert {"disposable-domains", "blocked-domains", "allowed-domains", "blocked-emails", "blocked-ips",
            "challenged-ips", "allowed-ips", "blocked-asns", "challenged-asns", "blocked-countries",
            "challenged-countries", "blocked-phone-prefixes", "blocked-devices"} <= set(found)
    assert found["blocked-ips"] | {"updated_at": None} == {
        "name": "blocked-ips", "kind": "ip", "action": "deny", "builtin": True, "entry_count": 0,
        "description": found["blocked-ips"]["description"], "updated_at": None,
    }
    assert found["disposable-domains"]["entry_count"] > 1000
    add(client, admin_headers, "blocked-ips", ["203.0.113.9", "198.51.100.0/24"])
    assert lists_by_name(client, admin_headers)["blocked-ips"]["entry_count"] == 2


def test_custom_list_is_created_once(client, admin_headers):
    body = {"name": "campaign-42", "kind": "email_domain", "action": "challenge", "description": "Black Friday wave"}
    response = client.post("/v1/lists", json=body, headers=admin_headers)
    assert response.status_code == 201
    assert response.get_json() | {"updated_at": None} == body | {"builtin": False, "entry_count": 0, "updated_at": None}
    assert lists_by_name(client, admin_headers)["campaign-42"]["action"] == "challenge"
    again = client.post("/v1/lists", json=body, headers=admin_headers)
    assert again.status_code == 409
    clash = client.post("/v1/lists", json={"name": "blocked-ips", "kind": "ip", "action": "deny"}, headers=admin_headers)
    assert clash.status_code == 409


@pytest.mark.parametrize("body", [
    {"name": "Bad Name", "kind": "ip", "action": "deny"},
    {"name": "-leading", "kind": "ip", "action": "deny"},
    {"name": "x" * 65, "kind": "ip", "action": "deny"},
    {"name": "ok", "kind": "colour", "action": "deny"},
    {"name": "ok", "kind": "ip", "action": "block"},
    {"name": "ok", "kind": "ip", "action": "deny", "extra": 1},
    {"kind": "ip", "action": "deny"},
    ["not", "an", "object"],
])
def test_bad_list_definitions_are_422(client, admin_headers, body):
    response = client.post("/v1/lists", json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_list_body_must_be_json(client, admin_headers):
    assert client.post("/v1/lists", data="name=x", content_type="application/x-www-form-urlencoded", headers=admin_headers).status_code == 415
    assert client.post("/v1/lists", data="{", content_type="application/json", headers=admin_headers).status_code == 400


# -- adding, reading, removing entries -----------------------------------------------------------

def test_added_values_are_normalised_with_provenance(client, admin_headers):
    response = add(client, admin_headers, "blocked-asns", ["AS64500", "64501", "as64500"], reason="bulletproof hoster")
    assert response.status_code == 200
    assert response.get_json() == {"added": 2, "updated": 0}
    assert add(client, admin_headers, "blocked-asns", ["64501", "AS64502"]).get_json() == {"added": 1, "updated": 1}
    items = entries(client, admin_headers, "blocked-asns")
    assert [item["value"] for item in items] == ["64500", "64501", "64502"]
    assert items[0]["source"] == "key:alice-admin"
    assert items[0]["reason"] == "bulletproof hoster" and items[1]["reason"] is None and items[2]["reason"] is None
    assert items[0]["expires_at"] is None and items[0]["created_at"].endswith("Z")


def test_email_entries_are_stored_canonical(client, admin_headers):
    add(client, admin_headers, "blocked-emails", ["J.Smith+promo@GoogleMail.com"])
    assert [item["value"] for item in entries(client, admin_headers, "blocked-emails")] == ["jsmith@gmail.com"]


def test_one_bad_value_rejects_the_request_and_names_each(client, admin_headers):
    response = add(client, admin_headers, "blocked-domains", ["fine.example", "someone@evil.example", "ok.example", "http://x.example/"])
    assert response.status_code == 422
    fields = [error["field"] for error in response.get_json()["errors"]]
    assert fields == ["values[1]", "values[3]"]
    assert entries(client, admin_headers, "blocked-domains") == []


@pytest.mark.parametrize(("name", "values"), [
    ("blocked-countries", ["ZZ"]),
    ("blocked-ips", ["10.0.0.5/24"]),
    ("blocked-phone-prefixes", ["+0 44"]),
    ("blocked-emails", ["nobody"]),
    ("blocked-devices", [" "]),
])
def test_values_of_the_wrong_shape_are_422(client, admin_headers, name, values):
    assert add(client, admin_headers, name, values).status_code == 422


@pytest.mark.parametrize("body", [
    {"values": []},
    {"values": "example.com"},
    {"values": [1]},
    {"values": ["x" * 321]},
    {"values": ["a.example"], "expires_at": "2020-01-01T00:00:00Z"},
    {"values": ["a.example"], "expires_at": "tomorrow"},
    {"values": ["a.example"], "expires_at": "2099-01-01T00:00:00"},
    {"values": ["a.example"], "reason": "r" * 501},
    {"values": ["a.example"], "source": "me"},
])
def test_bad_entry_bodies_are_422(client, admin_headers, body):
    assert client.post("/v1/lists/blocked-domains/entries", json=body, headers=admin_headers).status_code == 422


def test_unknown_list_is_404(client, admin_headers):
    assert client.get("/v1/lists/nope/entries", headers=admin_headers).status_code == 404
    assert add(client, admin_headers, "nope", ["a.example"]).status_code == 404
    assert client.put("/v1/lists/nope/entries", json={"values": []}, headers=admin_headers).status_code == 404
    assert client.delete("/v1/lists/nope/entries?value=a.example", headers=admin_headers).status_code == 404


def test_entries_page_with_cursor_substring_and_source(client, admin_headers):
    add(client, admin_headers, "blocked-domains", [f"spam{i:02d}.example" for i in range(25)])
    client.put("/v1/lists/blocked-domains/entries", data="spam25.example\n", content_type="text/plain", headers=admin_headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/lists/blocked-domains/entries", query_string=params, headers=admin_headers).get_json()
        seen += [item["value"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["spam25.example"]  # the PUT replaced the list
    add(client, admin_headers, "blocked-domains", [f"spam{i:02d}.example" for i in range(25)])
    values = []
    cursor = None
    for _ in range(10):
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/lists/blocked-domains/entries", query_string=params, headers=admin_headers).get_json()
        values += [item["value"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert values == sorted(f"spam{i:02d}.example" for i in range(26))
    assert [i["value"] for i in entries(client, admin_headers, "blocked-domains", q="AM1")] == [f"spam1{i}.example" for i in range(10)]
    assert entries(client, admin_headers, "blocked-domains", q="%") == []
    assert entries(client, admin_headers, "blocked-domains", source="key:alice-admin", limit=1000)[0]["value"] == "spam00.example"
    assert entries(client, admin_headers, "blocked-domains", source="file:other.txt") == []


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 1001}, {"limit": 10**30}, {"limit": "ten"},
    {"cursor": "garbage!"}, {"cursor": "eyJ4IjoxfQ"}, {"cursor": "x" * 201},
])
def test_bad_paging_parameters_are_422(client, admin_headers, params):
    response = client.get("/v1/lists/blocked-domains/entries", query_string=params, headers=admin_headers)
    assert response.status_code == 422


def test_delete_one_value(client, admin_headers):
    add(client, admin_headers, "blocked-asns", ["AS64500", "AS64501"])
    assert client.delete("/v1/lists/blocked-asns/entries", query_string={"value": "AS64500"}, headers=admin_headers).status_code == 204
    assert [i["value"] for i in entries(client, admin_headers, "blocked-asns")] == ["64501"]
    assert client.delete("/v1/lists/blocked-asns/entries?value=64500", headers=admin_headers).status_code == 404
    assert client.delete("/v1/lists/blocked-asns/entries?value=ASx", headers=admin_headers).status_code == 422


def test_delete_every_entry_of_one_source(client, admin_headers, keys):
    add(client, admin_headers, "blocked-domains", ["kept.example", "shared.example"])
    add(client, bearer(keys["both"]), "blocked-domains", ["poison1.example", "poison2.example", "shared.example"])
    sources = {i["value"]: i["source"] for i in entries(client, admin_headers, "blocked-domains")}
    # A value added again takes the new source: the last one to vouch for it.
    assert sources == {"kept.example": "key:alice-admin", "shared.example": "key:ops",
                       "poison1.example": "key:ops", "poison2.example": "key:ops"}
    response = client.delete("/v1/lists/blocked-domains/entries", query_string={"source": "key:ops"}, headers=admin_headers)
    assert response.status_code == 204
    assert [i["value"] for i in entries(client, admin_headers, "blocked-domains")] == ["kept.example"]
    assert client.delete("/v1/lists/blocked-domains/entries?source=key:ops", headers=admin_headers).status_code == 404


@pytest.mark.parametrize("query", ["", "?value=a.example&source=key:x"])
def test_delete_needs_exactly_one_of_value_and_source(client, admin_headers, query):
    assert client.delete(f"/v1/lists/blocked-domains/entries{query}", headers=admin_headers).status_code == 422


# -- replacing a list ------------------------------------------------------------------------

def test_replace_from_json_keeps_provenance_of_what_stays(client, admin_headers, keys):
    add(client, bearer(keys["both"]), "blocked-ips", ["203.0.113.1", "203.0.113.2"], reason="seen in wave 1")
    response = client.put("/v1/lists/blocked-ips/entries", json={"values": ["203.0.113.2", "198.51.100.0/24", "198.51.100.0/24"]},
                          headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json() == {"added": 1, "removed": 1, "total": 2}
    items = {i["value"]: i for i in entries(client, admin_headers, "blocked-ips")}
    assert set(items) == {"203.0.113.2", "198.51.100.0/24"}
    assert items["203.0.113.2"]["source"] == "key:ops" and items["203.0.113.2"]["reason"] == "seen in wave 1"
    assert items["198.51.100.0/24"]["source"] == "key:alice-admin"
    emptied = client.put("/v1/lists/blocked-ips/entries", json={"values": []}, headers=admin_headers)
    assert emptied.get_json() == {"added": 0, "removed": 2, "total": 0}


def test_replace_from_text_with_comments(client, admin_headers):
    add(client, admin_headers, "blocked-countries", ["KP"])
    body = "# countries we do not serve\nir\n\ncu   # sanctions\nKP\n"
    response = client.put("/v1/lists/blocked-countries/entries", data=body, content_type="text/plain; charset=utf-8", headers=admin_headers)
    assert response.get_json() == {"added": 2, "removed": 0, "total": 3}
    assert [i["value"] for i in entries(client, admin_headers, "blocked-countries")] == ["CU", "IR", "KP"]


def test_replace_is_all_or_nothing(client, admin_headers):
    add(client, admin_headers, "blocked-countries", ["KP"])
    response = client.put("/v1/lists/blocked-countries/entries", data="IR\nXX\nCU\nYY\n", content_type="text/plain", headers=admin_headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["line 2", "line 4"]
    assert [i["value"] for i in entries(client, admin_headers, "blocked-countries")] == ["KP"]


def test_replace_media_types(client, admin_headers):
    path = "/v1/lists/blocked-countries/entries"
    assert client.put(path, data="<x/>", content_type="application/xml", headers=admin_headers).status_code == 415
    assert client.put(path, data=b"\xff\xfe", content_type="text/plain", headers=admin_headers).status_code == 400
    assert client.put(path, data="{", content_type="application/json", headers=admin_headers).status_code == 400
    assert client.put(path, json={"values": ["GB"], "other": 1}, headers=admin_headers).status_code == 422


# -- the assessment path -------------------------------------------------------------------

def test_deny_list_match_denies_and_names_list_and_entry(client, admin_headers, assess_headers):
    add(client, admin_headers, "blocked-domains", ["example-mail.com"], reason="campaign 42")
    body = assess(client, assess_headers, email="someone@mx1.example-mail.com")
    assert body["verdict"] == "deny"
    reason = next(r for r in body["reasons"] if r["code"] == "list.deny")
    assert "blocked-domains" in reason["detail"] and "example-mail.com" in reason["detail"] and "campaign 42" in reason["detail"]
    assert body["signals"]["lists"] == [{"list": "blocked-domains", "action": "deny", "kind": "email_domain",
                                         "entry": "example-mail.com", "matched": "mx1.example-mail.com", "reason": "campaign 42"}]


def test_blocked_email_matches_every_alias_of_the_mailbox(client, admin_headers, assess_headers):
    add(client, admin_headers, "blocked-emails", ["john.doe@gmail.com"])
    body = assess(client, assess_headers, email="J.O.H.N.Doe+x@googlemail.com")
    assert body["verdict"] == "deny" and "list.deny" in codes(body)


def test_blocked_device_denies(client, admin_headers, assess_headers):
    add(client, admin_headers, "blocked-devices", ["  dev-farm-7 "])
    assert assess(client, assess_headers, email="a.person@gmail.com", device_id="dev-farm-7")["verdict"] == "deny"
    assert assess(client, assess_headers, email="a.person@gmail.com", device_id="dev-other")["verdict"] == "allow"


def test_allow_list_wins_over_the_score(client, admin_headers, assess_headers):
    """A wrong disposable-package entry is corrected by allowed-domains, not by editing the package list."""
    assert assess(client, assess_headers, email="someone@mailinator.com")["verdict"] == "deny"
    add(client, admin_headers, "allowed-domains", ["mailinator.com"])
    body = assess(client, assess_headers, email="someone@mailinator.com")
    assert body["verdict"] == "allow"
    assert {"email.disposable", "list.allow"} <= codes(body)
    assert "list.deny" not in codes(body)  # the disposable list is a scored signal, not a hard deny


def test_deny_list_wins_over_allow_list(client, admin_headers, assess_headers):
    add(client, admin_headers, "allowed-domains", ["a-only.net"])
    add(client, admin_headers, "blocked-emails", ["mallory@a-only.net"])
    assert assess(client, assess_headers, email="alice@a-only.net")["verdict"] == "allow"
    body = assess(client, assess_headers, email="Mallory@A-Only.net")
    assert body["verdict"] == "deny"
    assert {"list.deny", "list.allow"} <= codes(body)


def test_challenge_list_asks_for_a_challenge(client, admin_headers, assess_headers):
    client.post("/v1/lists", json={"name": "watch-domains", "kind": "email_domain", "action": "challenge"}, headers=admin_headers)
    add(client, admin_headers, "watch-domains", ["v6-only.net"])
    body = assess(client, assess_headers, email="someone@v6-only.net")
    assert body["verdict"] == "challenge"
    reason = next(r for r in body["reasons"] if r["code"] == "list.challenge")
    assert "watch-domains" in reason["detail"] and "v6-only.net" in reason["detail"]


def test_custom_allow_list_of_devices_wins_over_the_score(client, admin_headers, assess_headers):
    client.post("/v1/lists", json={"name": "trusted-devices", "kind": "device", "action": "allow"}, headers=admin_headers)
    add(client, admin_headers, "trusted-devices", ["qa-phone-1"])
    assert assess(client, assess_headers, email="tester@mailinator.com", device_id="qa-phone-1")["verdict"] == "allow"


def test_removed_entry_stops_matching_at_once(client, admin_headers, assess_headers):
    add(client, admin_headers, "blocked-domains", ["example-mail.com"])
    assert assess(client, assess_headers, email="bob@example-mail.com")["verdict"] == "deny"
    client.delete("/v1/lists/blocked-domains/entries?value=Example-Mail.COM.", headers=admin_headers)
    assert assess(client, assess_headers, email="bob@example-mail.com")["verdict"] == "allow"


def test_expired_entry_stops_matching(client, admin_headers, assess_headers):
    soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    add(client, admin_headers, "blocked-domains", ["v6-only.net"], expires_at=soon)
    assert entries(client, admin_headers, "blocked-domains")[0]["expires_at"] is not None
    assert assess(client, assess_headers, email="bob@v6-only.net")["verdict"] == "deny"
    time.sleep(1.2)
    assert assess(client, assess_headers, email="bob@v6-only.net")["verdict"] == "allow"


def test_change_through_one_instance_applies_on_another(settings, keys):
    """Two apps share the database (as workers or instances do): no restart is needed."""
    first, second = create_app(settings), create_app(settings)
    try:
        for app in (first, second):
            app.test_client_class = ContractClient
        admin, backend = first.test_client(), second.test_client()
        assert assess(backend, bearer(keys["assess"]), email="bob@a-only.net")["verdict"] == "allow"  # caches the index
        add(admin, bearer(keys["admin"]), "blocked-domains", ["a-only.net"])
        assert assess(backend, bearer(keys["assess"]), email="bob@a-only.net")["verdict"] == "deny"
        admin.put("/v1/lists/blocked-domains/entries", json={"values": []}, headers=bearer(keys["admin"]))
        assert assess(backend, bearer(keys["assess"]), email="bob@a-only.net")["verdict"] == "allow"
    finally:
        first.extensions["verify"].database.dispose()
        second.extensions["verify"].database.dispose()


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("post", "/v1/lists/blocked-devices/entries", {"json": {"values": ["dev\x00ice"]}}),
    ("post", "/v1/lists/blocked-devices/entries", {"json": {"values": ["device"], "reason": "why\x00"}}),
    ("put", "/v1/lists/blocked-devices/entries", {"data": "dev\x00ice\n", "content_type": "text/plain"}),
    ("get", "/v1/lists/blocked-devices/entries", {"query_string": {"q": "a\x00"}}),
    ("get", "/v1/lists/blocked-devices/entries", {"query_string": {"cursor": "eyJhZnRlciI6Ilx1MDAwMCJ9"}}),
    ("delete", "/v1/lists/blocked-devices/entries", {"query_string": {"source": "a\x00"}}),
    ("post", "/v1/lists", {"json": {"name": "x", "kind": "ip", "action": "deny", "description": "\x00"}}),
])
def test_nul_characters_are_refused_not_stored(client, admin_headers, method, path, kwargs):
    """PostgreSQL text cannot hold NUL; it must be a 422, never a database error."""
    assert getattr(client, method)(path, headers=admin_headers, **kwargs).status_code == 422


# -- deleting lists, updating entries, uploads ----------------------------------------------

def test_a_custom_list_can_be_deleted_and_a_builtin_one_cannot(client, admin_headers, assess_headers):
    client.post("/v1/lists", json={"name": "wave-9", "kind": "email_domain", "action": "deny"}, headers=admin_headers)
    add(client, admin_headers, "wave-9", ["wave9.example"])
    assert "list.deny" in codes(assess(client, assess_headers, email="a@wave9.example"))
    assert client.delete("/v1/lists/wave-9", headers=admin_headers).status_code == 204
    assert "wave-9" not in lists_by_name(client, admin_headers)
    assert "list.deny" not in codes(assess(client, assess_headers, email="b@wave9.example"))
    assert client.delete("/v1/lists/wave-9", headers=admin_headers).status_code == 404
    refused = client.delete("/v1/lists/blocked-domains", headers=admin_headers)
    assert refused.status_code == 409 and "built-in" in refused.get_json()["detail"]
    assert client.delete("/v1/lists/blocked-domains", headers=assess_headers).status_code == 403


def test_adding_a_present_value_updates_its_reason_expiry_and_source(client, admin_headers, services):
    add(client, admin_headers, "blocked-domains", ["old.example"], reason="first look")
    with services.database.transaction() as session:
        create_api_key("bob-admin", ["admin"], session=session)
        bob = create_api_key("bob-2", ["admin"], session=session)
    later = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
    response = add(client, bearer(bob), "blocked-domains", ["old.example", "new.example"], reason="wave 3",
                   expires_at=later.isoformat().replace("+00:00", "Z"))
    assert response.get_json() == {"added": 1, "updated": 1}
    item = {row["value"]: row for row in entries(client, admin_headers, "blocked-domains")}["old.example"]
    assert (item["reason"], item["source"]) == ("wave 3", "key:bob-2")
    assert datetime.fromisoformat(item["expires_at"]) == later
    again = add(client, bearer(bob), "blocked-domains", ["old.example"], reason="wave 3", expires_at=later.isoformat())
    assert again.get_json() == {"added": 0, "updated": 0}


def upload(client, headers, name, text, content_type, **params):
    return client.post(f"/v1/lists/{name}/entries", data=text.encode(), content_type=content_type,
                       query_string=params, headers=headers)


def test_a_text_upload_names_every_bad_line_and_adds_nothing(client, admin_headers):
    response = upload(client, admin_headers, "blocked-ips", "# wave 4\n203.0.113.9\nnot-an-ip\n\n198.51.100.0/24\n999.1.1.1\n",
                      "text/plain", source="wave4.txt")
    assert response.status_code == 422
    assert [error["field"] for error in response.get_json()["errors"]] == ["line 3", "line 6"]
    assert entries(client, admin_headers, "blocked-ips") == []
    good = upload(client, admin_headers, "blocked-ips", "203.0.113.9\n198.51.100.0/24\n", "text/plain",
                  source="wave4.txt", reason="wave 4")
    assert good.status_code == 200 and good.get_json() == {"added": 2, "updated": 0}
    stored = entries(client, admin_headers, "blocked-ips")
    assert {(item["source"], item["reason"]) for item in stored} == {("file:wave4.txt", "wave 4")}


def test_a_csv_upload_keeps_each_rows_reason_and_expiry(client, admin_headers):
    body = "value,reason,expires_at\nbad.example,row reason,2099-01-01T00:00:00Z\nworse.example,,\n"
    response = upload(client, admin_headers, "blocked-domains", body, "text/csv", reason="default reason",
                      expires_at="2098-01-01T00:00:00Z")
    assert response.get_json() == {"added": 2, "updated": 0}
    stored = {item["value"]: item for item in entries(client, admin_headers, "blocked-domains")}
    assert stored["bad.example"]["reason"] == "row reason" and stored["bad.example"]["expires_at"].startswith("2099")
    assert stored["worse.example"]["reason"] == "default reason" and stored["worse.example"]["expires_at"].startswith("2098")
    assert stored["bad.example"]["source"] == "key:alice-admin"
    past = upload(client, admin_headers, "blocked-domains", "x.example,r,2001-01-01T00:00:00Z\n", "text/csv")
    assert past.status_code == 422 and past.get_json()["errors"][0]["field"] == "line 1"
    assert upload(client, admin_headers, "blocked-domains", "x.example\n", "text/plain", expires_at="yesterday").status_code == 422
    assert upload(client, admin_headers, "blocked-domains", "x.example\n", "text/plain", colour="red").status_code == 422
    assert upload(client, admin_headers, "blocked-domains", "x.example\n", "application/xml").status_code == 415


def test_a_list_that_a_feed_fills_cannot_be_deleted(client, admin_headers, services):
    client.post("/v1/lists", json={"name": "tor-exits", "kind": "ip", "action": "challenge"}, headers=admin_headers)
    with services.database.transaction() as session:
        add_feed("tor", url="https://example.invalid/tor.txt", list_name="tor-exits", feed_format="lines",
                 interval=timedelta(hours=1), actor="cli", session=session)
    refused = client.delete("/v1/lists/tor-exits", headers=admin_headers)
    assert refused.status_code == 409 and "tor" in refused.get_json()["detail"]
    assert "tor-exits" in lists_by_name(client, admin_headers)
