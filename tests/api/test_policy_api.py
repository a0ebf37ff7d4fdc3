"""/v1/policy over HTTP, on both databases: read, new versions, simulation."""

from __future__ import annotations

import json

import pytest

from verify.engine.reasons import CATALOGUE
from verify.settings import PROJECT_ROOT

DEFAULT = json.loads((PROJECT_ROOT / "data" / "default_policy.json").read_text())


def assess(client, headers, email: str) -> dict:
    response = client.post("/v1/assessments", json={"email": email}, headers=headers)
    assert response.status_code == 201
    return response.get_json()


def put_policy(client, headers, **changes):
    return client.put("/v1/policy", json={**DEFAULT, **changes}, headers=headers)


@pytest.mark.parametrize(("method", "path"), [("get", "/v1/policy"), ("put", "/v1/policy"), ("post", "/v1/policy/simulate")])
def test_policy_routes_need_the_admin_scope(client, assess_headers, method, path):
    assert getattr(client, method)(path, json=DEFAULT).status_code == 401
    assert getattr(client, method)(path, json=DEFAULT, headers=assess_headers).status_code == 403


def test_current_policy_is_version_one_with_every_code(client, admin_headers):
    body = client.get("/v1/policy", headers=admin_headers).get_json()
    assert body["version"] == 1
    assert body["thresholds"] == {"challenge": 40, "deny": 80}
    assert body["points"] == {code: spec.points for code, spec in sorted(CATALOGUE.items())}
    assert body["created_by"] == "system" and body["created_at"].endswith("Z")


def test_put_stores_a_new_version_that_judges_the_next_assessment(client, admin_headers, assess_headers):
    assert assess(client, assess_headers, "admin@example-mail.com")["verdict"] == "allow"  # role account: 20 points
    document = client.get("/v1/policy", headers=admin_headers).get_json()
    document["points"]["email.role_account"] = 50
    document["version"] = 99  # read-only: ignored
    document["created_by"] = "someone else"
    response = client.put("/v1/policy", json=document, headers=admin_headers)
    assert response.status_code == 200
    stored = response.get_json()
    assert stored["version"] == 2 and stored["created_by"] == "alice-admin"
    assert stored["points"]["email.role_account"] == 50
    assert client.get("/v1/policy", headers=admin_headers).get_json() == stored
    judged = assess(client, assess_headers, "admin@example-mail.com")
    assert judged["policy_version"] == 2
    assert judged["verdict"] == "challenge" and judged["score"] == 50


def test_points_left_out_keep_their_defaults(client, admin_headers):
    response = client.put("/v1/policy", json={"thresholds": {"challenge": 30, "deny": 70}, "points": {"email.relay": 0}}, headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["thresholds"] == {"challenge": 30, "deny": 70}
    assert body["points"]["email.relay"] == 0 and body["points"]["email.disposable"] == 90


@pytest.mark.parametrize(("document", "field"), [
    ({"thresholds": {"challenge": 90, "deny": 80}}, "thresholds"),
    ({"thresholds": {"challenge": -1, "deny": 80}}, "thresholds.challenge"),
    ({"thresholds": {"challenge": 40, "deny": 101}}, "thresholds.deny"),
    ({"thresholds": {"challenge": 40.5, "deny": 80}}, "thresholds.challenge"),
    ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.madeup": 10}}, "points.email.madeup"),
    ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.relay": 101}}, "points.email.relay"),
    ({"thresholds": {"challenge": 40, "deny": 80}, "points": {"email.relay": True}}, "points.email.relay"),
    ({"thresholds": {"challenge": 40, "deny": 80}, "points": []}, "points"),
    ({"thresholds": {"challenge": 40, "deny": 80}, "colour": "red"}, "colour"),
    ({}, "thresholds"),
    ([1, 2], ""),
])
def test_invalid_policies_are_422_and_store_nothing(client, admin_headers, document, field):
    response = client.put("/v1/policy", json=document, headers=admin_headers)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.get_json()["errors"]]
    assert client.get("/v1/policy", headers=admin_headers).get_json()["version"] == 1
    assert client.post("/v1/policy/simulate", json=document, headers=admin_headers).status_code == 422


def test_policy_body_must_be_json(client, admin_headers):
    assert client.put("/v1/policy", data="x", content_type="text/plain", headers=admin_headers).status_code == 415
    assert client.put("/v1/policy", data="{", content_type="application/json", headers=admin_headers).status_code == 400


def test_simulation_reports_transitions_with_examples_and_stores_nothing(client, admin_headers, assess_headers):
    allowed = [assess(client, assess_headers, f"{name}@example-mail.com") for name in ("admin", "info", "support")]
    assert {a["verdict"] for a in allowed} == {"allow"}  # role accounts, 20 points each
    assess(client, assess_headers, "alice.johnson@gmail.com")
    assert assess(client, assess_headers, "x@mailinator.com")["verdict"] == "deny"
    proposal = {**DEFAULT, "points": {**DEFAULT["points"], "email.role_account": 85, "email.disposable": 50}}
    response = client.post("/v1/policy/simulate", json=proposal, headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["evaluated"] == 5
    assert body["changed"] == 4
    assert body["transitions"] == {"allow->deny": 3, "deny->challenge": 1}
    example = next(e for e in body["examples"] if e["id"] == allowed[0]["id"])
    assert example == {"id": allowed[0]["id"], "email": "admin@example-mail.com", "from": "allow", "to": "deny",
                       "score_before": 20, "score_after": 85}
    assert client.get("/v1/policy", headers=admin_headers).get_json()["version"] == 1
    recent = client.post("/v1/policy/simulate?last=2", json=proposal, headers=admin_headers).get_json()
    assert recent["evaluated"] == 2 and recent["transitions"] == {"deny->challenge": 1}  # the newest two


def test_simulating_the_current_policy_changes_nothing(client, admin_headers, assess_headers):
    for email in ("bob@gmial.com", "admin@nullmx.org", "x@mailinator.com", "alice.johnson@gmail.com"):
        assess(client, assess_headers, email)
    body = client.post("/v1/policy/simulate", json=DEFAULT, headers=admin_headers).get_json()
    assert body == {"evaluated": 4, "changed": 0, "transitions": {}, "examples": [],
                    "revisions": {"evaluated": 0, "changed": 0, "transitions": {}}}


def test_examples_are_capped_per_transition(client, admin_headers, assess_headers):
    for role in ("admin", "info", "support", "billing", "contact", "hello", "feedback"):
        assert assess(client, assess_headers, f"{role}@example-mail.com")["score"] == 20
    proposal = {"thresholds": {"challenge": 0, "deny": 100}}
    body = client.post("/v1/policy/simulate", json=proposal, headers=admin_headers).get_json()
    assert body["transitions"] == {"allow->challenge": 7}
    assert len(body["examples"]) == 5


@pytest.mark.parametrize("query", ["last=0", "last=100001", "last=many", f"last={10**40}"])
def test_bad_simulation_size_is_422(client, admin_headers, query):
    assert client.post(f"/v1/policy/simulate?{query}", json=DEFAULT, headers=admin_headers).status_code == 422


# -- versions and restore ---------------------------------------------------------------------

def test_versions_are_listed_read_and_restored_as_a_new_audited_version(client, admin_headers, assess_headers):
    put_policy(client, admin_headers, thresholds={"challenge": 10, "deny": 80})
    listed = client.get("/v1/policy/versions", headers=admin_headers).get_json()["items"]
    assert [(item["version"], item["actor"]) for item in listed] == [(2, "alice-admin"), (1, "system")]
    assert client.get("/v1/policy/versions/2", headers=admin_headers).get_json()["thresholds"]["challenge"] == 10
    assert client.get("/v1/policy/versions/9", headers=admin_headers).status_code == 404
    assert assess(client, assess_headers, "admin@example-mail.com")["verdict"] == "challenge"  # 20 points >= 10

    restored = client.post("/v1/policy/versions/1/restore", headers=admin_headers)
    assert restored.status_code == 200
    body = restored.get_json()
    assert body["version"] == 3 and body["thresholds"] == {"challenge": 40, "deny": 80}
    assert client.get("/v1/policy", headers=admin_headers).get_json()["version"] == 3
    assert assess(client, assess_headers, "admin@example-mail.com")["verdict"] == "allow"
    event = client.get("/v1/audit", query_string={"action": "policy.restore"}, headers=admin_headers).get_json()["items"][0]
    assert (event["actor"], event["target"], event["detail"]["restored"]) == ("alice-admin", "version 3", 1)
    assert client.post("/v1/policy/versions/7/restore", headers=admin_headers).status_code == 404
    assert client.post("/v1/policy/versions/1/restore", headers=assess_headers).status_code == 403
