"""Feedback, search and clusters over HTTP: GET /v1/assessments, POST .../feedback, GET .../related."""

from __future__ import annotations

import pytest

from tests.support.history_traffic import add_mail_domains, post


@pytest.fixture(autouse=True)
def mail_domains(dns_server):
    add_mail_domains(dns_server)


# -- feedback ------------------------------------------------------------------------------

def test_feedback_is_stored_and_shown_with_the_assessment(client, assess_headers, admin_headers):
    row = post(client, assess_headers, "fb@example-mail.com")
    response = client.post(
        f"/v1/assessments/{row['id']}/feedback", json={"label": "fraud", "source": "chargeback", "note": "card"}, headers=assess_headers
    )
    assert response.status_code == 201
    stored = response.get_json()
    assert (stored["assessment_id"], stored["label"], stored["source"], stored["note"]) == (row["id"], "fraud", "chargeback", "card")
    client.post(f"/v1/assessments/{row['id']}/feedback", json={"label": "legitimate"}, headers=admin_headers)
    shown = client.get(f"/v1/assessments/{row['id']}", headers=assess_headers).get_json()["feedback"]
    assert [(f["label"], f["source"]) for f in shown] == [("fraud", "chargeback"), ("legitimate", "other")]


def test_feedback_for_an_unknown_assessment_is_404(client, assess_headers):
    assert client.post("/v1/assessments/nope/feedback", json={"label": "fraud"}, headers=assess_headers).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"label": "maybe"}, {"label": "fraud", "source": "gut"}, {"label": "fraud", "note": "x" * 1001}, {"label": "fraud", "extra": 1}, []],
    ids=["empty", "bad-label", "bad-source", "long-note", "unknown-field", "not-object"],
)
def test_bad_feedback_is_422(client, assess_headers, body):
    row = post(client, assess_headers, "fb2@example-mail.com")
    assert client.post(f"/v1/assessments/{row['id']}/feedback", json=body, headers=assess_headers).status_code == 422


def test_feedback_needs_a_key(client, assess_headers):
    row = post(client, assess_headers, "fb3@example-mail.com")
    assert client.post(f"/v1/assessments/{row['id']}/feedback", json={"label": "fraud"}).status_code == 401


# -- search ----------------------------------------------------------------------------------

@pytest.fixture
def stored(client, assess_headers):
    rows = {
        "gmail": post(client, assess_headers, "Ann.Lee+x@gmail.com", 0, ip="81.2.69.4", device_id="dev-1"),
        "gmail2": post(client, assess_headers, "annlee@googlemail.com", 10, ip="81.2.69.200", phone="+14155552671"),
        "corp": post(client, assess_headers, "bob@northwind.example", 20, ip="2001:db8:5::1"),
        "bad": post(client, assess_headers, "x@mailinator.com", 30, ip="198.51.100.9"),
    }
    return rows


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, ["bad", "corp", "gmail2", "gmail"]),
        ({"email": "a.n.n.lee@gmail.com"}, ["gmail2", "gmail"]),
        ({"email_domain": "NorthWind.example"}, ["corp"]),
        ({"verdict": "deny"}, ["bad"]),
        ({"ip": "81.2.69.4"}, ["gmail"]),
        ({"ip": "81.2.69.0/24"}, ["gmail2", "gmail"]),
        ({"ip": "81.2.69.192/26"}, ["gmail2"]),
        ({"ip": "2001:db8:5::/64"}, ["corp"]),
        ({"phone": "+1 415 555 2671"}, ["gmail2"]),
        ({"device_id": "dev-1"}, ["gmail"]),
        ({"reason": "email.disposable"}, ["bad"]),
        ({"reason": "email.canonical_reuse"}, ["gmail2"]),
    ],
    ids=["all-newest-first", "email-canonical", "domain", "verdict", "ip", "cidr-24", "cidr-26", "ipv6-64", "phone", "device", "reason", "reason-history"],
)
def test_search_filters(client, admin_headers, stored, query, expected):
    assert ids(client.get("/v1/assessments", query_string=query, headers=admin_headers)) == [stored[name]["id"] for name in expected]


def test_search_by_time_and_pages_with_a_cursor(client, admin_headers, stored):
    window = {"since": stored["gmail2"]["occurred_at"], "until": stored["bad"]["occurred_at"]}
    assert ids(client.get("/v1/assessments", query_string=window, headers=admin_headers)) == [stored["corp"]["id"], stored["gmail2"]["id"]]
    seen, cursor = [], None
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/assessments", query_string=query, headers=admin_headers).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [stored[name]["id"] for name in ("bad", "corp", "gmail2", "gmail")]


@pytest.mark.parametrize(
    "query",
    [{"verdict": "maybe"}, {"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"cursor": "garbage!"}, {"cursor": "WzEsMl0"},
     {"since": "yesterday"}, {"ip": "10.0.0.0/8"}, {"ip": "nope"}, {"email": "not-an-address"}, {"phone": "call me"},
     {"reason": "email.nope"}, {"email_domain": "bad domain"}, {"colour": "red"}],
    ids=["verdict", "limit-0", "limit-501", "limit-text", "cursor-garbage", "cursor-wrong-shape", "since", "ip-too-wide",
         "ip-bad", "email", "phone", "reason", "domain", "unknown-filter"],
)
def test_bad_search_is_422(client, admin_headers, query):
    response = client.get("/v1/assessments", query_string=query, headers=admin_headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_search_is_for_admins(client, assess_headers):
    assert client.get("/v1/assessments", headers=assess_headers).status_code == 403


# -- related -----------------------------------------------------------------------------------

def test_related_groups_by_what_is_shared(client, assess_headers, admin_headers):
    one = post(client, assess_headers, "kit.lane@bulkreg.example", 0, ip="192.0.2.10", device_id="farm-7", phone="+14155550111")
    two = post(client, assess_headers, "Kit.Lane+2@bulkreg.example", 5, ip="192.0.2.11", device_id="farm-7")
    three = post(client, assess_headers, "moe.dunn@bulkreg.example", 6, ip="192.0.2.10", phone="+14155550111")
    post(client, assess_headers, "stranger@example-mail.com", 7, ip="198.51.100.1")
    response = client.get(f"/v1/assessments/{one['id']}/related", headers=admin_headers)
    assert response.status_code == 200
    groups = {group["shared"]: group for group in response.get_json()["groups"]}
    assert set(groups) == {"email_canonical", "phone", "device_id", "ip", "ip_network", "email_domain"}
    assert [item["id"] for item in groups["email_canonical"]["items"]] == [two["id"]]
    assert [item["id"] for item in groups["phone"]["items"]] == [three["id"]]
    assert [item["id"] for item in groups["device_id"]["items"]] == [two["id"]]
    assert [item["id"] for item in groups["ip"]["items"]] == [three["id"]]
    assert groups["ip_network"]["value"] == "192.0.2.0/24" and groups["ip_network"]["count"] == 2
    assert groups["email_domain"]["count"] == 2
    limited = client.get(f"/v1/assessments/{one['id']}/related", query_string={"limit": 1}, headers=admin_headers).get_json()
    network = next(group for group in limited["groups"] if group["shared"] == "ip_network")
    assert network["count"] == 2 and [item["id"] for item in network["items"]] == [three["id"]]


def test_related_skips_free_mail_domains(client, assess_headers, admin_headers):
    one = post(client, assess_headers, "lone.rider@gmail.com", 0)
    post(client, assess_headers, "other.person@gmail.com", 1)
    body = client.get(f"/v1/assessments/{one['id']}/related", headers=admin_headers).get_json()
    assert body == {"id": one["id"], "groups": []}


def test_related_errors(client, assess_headers, admin_headers):
    row = post(client, assess_headers, "e@example-mail.com")
    assert client.get("/v1/assessments/nope/related", headers=admin_headers).status_code == 404
    assert client.get(f"/v1/assessments/{row['id']}/related", query_string={"limit": 0}, headers=admin_headers).status_code == 422
    assert client.get(f"/v1/assessments/{row['id']}/related", headers=assess_headers).status_code == 403


def test_nul_characters_are_refused_not_crashed_on(client, assess_headers, admin_headers):
    row = post(client, assess_headers, "nul@example-mail.com")
    assert client.get("/v1/assessments", query_string={"device_id": "a\x00b"}, headers=admin_headers).status_code == 422
    response = client.post(f"/v1/assessments/{row['id']}/feedback", json={"label": "fraud", "note": "a\x00b"}, headers=assess_headers)
    assert response.status_code == 422
    assert client.get("/v1/assessments/a%00b/related", headers=admin_headers).status_code == 404


def test_a_cursor_with_an_absurd_position_is_422(client, admin_headers):
    import base64
    import json

    cursor = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", 10**30]).encode()).decode()
    assert client.get("/v1/assessments", query_string={"cursor": cursor}, headers=admin_headers).status_code == 422
