"""/v1/webhooks: register, list, read, change and remove endpoints, the delivery log and
redeliver; assessment.created for challenges and denies, sent to a real receiver."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.webhook_receiver import WebhookReceiver
from verify.delivery import Deliverer


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def register(client, headers, url: str, events=("assessment.created",), **extra):
    response = client.post("/v1/webhooks", json={"url": url, "events": list(events), **extra}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_secret_is_shown_once(client, admin_headers, receiver):
    created = register(client, admin_headers, receiver.url(), events=["revision.created", "assessment.created"], description="backend")
    assert created["secret"].startswith("whsec_")
    assert (created["url"], created["events"], created["description"], created["enabled"]) == (
        receiver.url(), ["revision.created", "assessment.created"], "backend", True,
    )
    read = client.get(f"/v1/webhooks/{created['id']}", headers=admin_headers).get_json()
    listed = client.get("/v1/webhooks", headers=admin_headers).get_json()["items"]
    assert "secret" not in read and [item["id"] for item in listed] == [created["id"]]
    assert all("secret" not in item for item in listed)
    assert created["secret"] not in str(client.get("/v1/audit", headers=admin_headers).get_json())


def test_changes_are_audited(client, admin_headers, receiver):
    created = register(client, admin_headers, receiver.url())
    changed = client.patch(f"/v1/webhooks/{created['id']}", json={"enabled": False, "events": ["revision.created"]}, headers=admin_headers)
    assert changed.status_code == 200
    assert (changed.get_json()["enabled"], changed.get_json()["events"]) == (False, ["revision.created"])
    assert client.delete(f"/v1/webhooks/{created['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/v1/webhooks/{created['id']}", headers=admin_headers).status_code == 404
    assert client.delete(f"/v1/webhooks/{created['id']}", headers=admin_headers).status_code == 404
    events = client.get("/v1/audit", headers=admin_headers).get_json()["items"]
    trail = [(e["actor"], e["action"], e["target"]) for e in events if e["action"].startswith("webhook.")]
    assert trail == [("alice-admin", f"webhook.{action}", created["id"]) for action in ("delete", "update", "create")]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "not a url", "events": ["revision.created"]}, "url"),
        ({"url": "ftp://hooks.example/x", "events": ["revision.created"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["revision.created"]}, "url"),
        ({"url": "http://", "events": ["revision.created"]}, "url"),
        ({"url": "https://hooks.example:99999/x", "events": ["revision.created"]}, "url"),
        ({"url": "https://user:pw@hooks.example/x", "events": ["revision.created"]}, "url"),
        ({"url": "https://hooks.example/\x00", "events": ["revision.created"]}, "url"),
        ({"url": "https://hooks.example/" + "a" * 2000, "events": ["revision.created"]}, "url"),
        ({"url": "https://hooks.example/x", "events": []}, "events"),
        ({"url": "https://hooks.example/x", "events": ["user.deleted"]}, "events.0"),
        ({"url": "https://hooks.example/x", "events": ["revision.created"], "description": "d" * 501}, "description"),
        ({"url": "https://hooks.example/x", "events": ["revision.created"], "secret": "whsec_mine"}, "secret"),
        ({"url": "https://hooks.example/x", "events": ["revision.created"], "enabled": "yes"}, "enabled"),
        ({"events": ["revision.created"]}, "url"),
        ({"url": "http://[fe80::1%eth0]/x", "events": ["revision.created"]}, "url"),
    ],
    ids=["words", "ftp", "javascript", "no-host", "bad-port", "credentials", "nul", "long", "no-events",
         "unknown-event", "huge-description", "own-secret", "enabled-string", "no-url", "zone-id"],
)
def test_bad_endpoints_are_refused(client, admin_headers, body, field):
    response = client.post("/v1/webhooks", json=body, headers=admin_headers)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in {problem["field"] for problem in response.get_json()["errors"]}


def test_bad_changes_are_refused(client, admin_headers, receiver):
    created = register(client, admin_headers, receiver.url())
    for body in ({}, {"url": "gopher://x"}, {"enabled": None}, {"description": "d" * 501}):
        response = client.patch(f"/v1/webhooks/{created['id']}", json=body, headers=admin_headers)
        assert response.status_code == 422, body
    assert client.get(f"/v1/webhooks/{created['id']}", headers=admin_headers).get_json()["url"] == receiver.url()


def test_challenges_and_denies_are_announced_signed(client, admin_headers, assess_headers, services, receiver):
    created = register(client, admin_headers, receiver.url())
    register(client, admin_headers, receiver.url("/revisions-only"), events=["revision.created"])
    denied = client.post("/v1/assessments", json={"email": "not an address"}, headers=assess_headers).get_json()
    allowed = client.post("/v1/assessments", json={"email": "alice.johnson@gmail.com"}, headers=assess_headers).get_json()
    assert (denied["verdict"], allowed["verdict"]) == ("deny", "allow")

    outcomes = Deliverer(database=services.database, timeout=2).deliver_due()
    assert [o.status for o in outcomes] == ["succeeded"]
    [received] = receiver.received
    assert received.path == "/hook"
    event = Webhook(created["secret"]).verify(received.body, received.headers)
    assert event["type"] == "assessment.created"
    assert event["data"]["id"] == denied["id"] and event["data"]["verdict"] == "deny"

    log = client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=admin_headers).get_json()
    [entry] = log["items"]
    assert log["next_cursor"] is None
    assert (entry["id"], entry["event_type"], entry["status"], entry["attempts"], entry["last_status_code"]) == (
        received.headers["webhook-id"], "assessment.created", "succeeded", 1, 204,
    )


def test_the_log_pages_newest_first_and_redeliver_sends_again(client, admin_headers, assess_headers, services, receiver):
    created = register(client, admin_headers, receiver.url())
    for n in range(3):
        client.post("/v1/assessments", json={"email": f"broken {n}"}, headers=assess_headers)
    receiver.mode = "fail"
    Deliverer(database=services.database, timeout=2).deliver_due()
    first = client.get(f"/v1/webhooks/{created['id']}/deliveries?limit=2", headers=admin_headers).get_json()
    rest = client.get(f"/v1/webhooks/{created['id']}/deliveries?limit=2&cursor={first['next_cursor']}", headers=admin_headers).get_json()
    items = first["items"] + rest["items"]
    assert rest["next_cursor"] is None and len(items) == 3
    assert [item["id"] for item in items] == list(reversed(receiver.ids()))  # newest first
    assert {(i["status"], i["last_status_code"], i["last_error"]) for i in items} == {("pending", 500, "HTTP 500")}
    assert all(len(i["last_response"]) <= 200 for i in items)
    pending = client.get(f"/v1/webhooks/{created['id']}/deliveries?status=failed", headers=admin_headers).get_json()
    assert pending["items"] == []

    receiver.mode = "ok"
    target = items[0]["id"]
    again = client.post(f"/v1/webhooks/{created['id']}/deliveries/{target}/redeliver", headers=admin_headers)
    assert again.status_code == 202 and again.get_json()["status"] == "pending"
    outcomes = Deliverer(database=services.database, timeout=2).deliver_due()
    assert [(o.delivery_id, o.status) for o in outcomes] == [(target, "succeeded")]  # the others still back off
    assert receiver.ids(answered="ok") == [target]  # the same webhook-id as before

    again = client.post(f"/v1/webhooks/{created['id']}/deliveries/{target}/redeliver", headers=admin_headers)
    assert again.status_code == 202  # a delivered one can be sent again too
    Deliverer(database=services.database, timeout=2).deliver_due()
    assert receiver.ids(answered="ok") == [target, target]
    actions = [e["action"] for e in client.get("/v1/audit", headers=admin_headers).get_json()["items"]]
    assert actions.count("webhook.redeliver") == 2

    assert client.post(f"/v1/webhooks/{created['id']}/deliveries/msg_nope/redeliver", headers=admin_headers).status_code == 404
    assert client.post(f"/v1/webhooks/no-such/deliveries/{target}/redeliver", headers=admin_headers).status_code == 404
    assert client.get("/v1/webhooks/no-such/deliveries", headers=admin_headers).status_code == 404
    assert client.get(f"/v1/webhooks/{created['id']}/deliveries?cursor=forged", headers=admin_headers).status_code == 422


def test_a_delivery_in_flight_is_not_redelivered(client, admin_headers, assess_headers, services, receiver):
    from datetime import datetime, timezone

    from verify.delivery import LEASE
    from verify.store.webhooks import claim_due

    created = register(client, admin_headers, receiver.url())
    client.post("/v1/assessments", json={"email": "broken"}, headers=assess_headers)
    with services.database.transaction() as session:
        [claimed] = claim_due(now=datetime.now(timezone.utc), lease=LEASE, limit=5, session=session)
    response = client.post(f"/v1/webhooks/{created['id']}/deliveries/{claimed.id}/redeliver", headers=admin_headers)
    assert response.status_code == 409


def test_assess_scope_cannot_manage_webhooks(client, assess_headers):
    assert client.get("/v1/webhooks", headers=assess_headers).status_code == 403
    assert client.post("/v1/webhooks", json={"url": "https://x.example", "events": ["revision.created"]}, headers=assess_headers).status_code == 403


def test_erasure_removes_the_deliveries_about_the_person(client, admin_headers, assess_headers, services, receiver):
    created = register(client, admin_headers, receiver.url())
    client.post("/v1/assessments", json={"email": "not an address", "external_id": "user-9"}, headers=assess_headers)
    client.post("/v1/assessments", json={"email": "broken too", "external_id": "user-10"}, headers=assess_headers)
    log = f"/v1/webhooks/{created['id']}/deliveries"
    assert len(client.get(log, headers=admin_headers).get_json()["items"]) == 2
    assert client.post("/v1/erasure", json={"external_id": "user-9"}, headers=admin_headers).get_json() == {"erased": 1}
    [left] = client.get(log, headers=admin_headers).get_json()["items"]
    Deliverer(database=services.database, timeout=2).deliver_due()
    assert receiver.ids() == [left["id"]]
    assert b"user-9" not in b"".join(r.body for r in receiver.received)


def test_every_revision_reaches_the_receiver_signed_and_equal_to_the_feed(client, admin_headers, assess_headers, services, receiver):
    from tests.support.history_traffic import post
    from verify import revising

    endpoint = register(client, admin_headers, receiver.url(), events=["revision.created"])
    members = [post(client, assess_headers, f"{name}@gmail.com", n, device_id="farm-7") for n, name in enumerate(["ann.ames", "bo.berg", "cy.cole"])]
    assert client.post(f"/v1/assessments/{members[0]['id']}/feedback", json={"label": "fraud"}, headers=admin_headers).status_code == 201
    assert revising.run_due(services.database) > 0

    feed = client.get("/v1/revisions", headers=assess_headers).get_json()["items"]
    assert {item["assessment_id"] for item in feed} >= {member["id"] for member in members[1:]}
    outcomes = Deliverer(database=services.database, timeout=2).deliver_due()
    assert [o.status for o in outcomes] == ["succeeded"] * len(feed)
    events = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.received]
    assert {e["type"] for e in events} == {"revision.created"}
    assert sorted((e["data"] for e in events), key=lambda d: d["sequence"]) == feed
