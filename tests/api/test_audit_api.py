"""/v1/audit over HTTP, on both databases: every change to lists, policy and keys, newest first."""

from __future__ import annotations

import json

import pytest

from verify.settings import PROJECT_ROOT
from tests.conftest import bearer
from verify.store.keys import create_api_key, revoke_api_key
from verify.store.lists import AUDIT_VALUES_LIMIT

DEFAULT = json.loads((PROJECT_ROOT / "data" / "default_policy.json").read_text())


def audit(client, headers, **params) -> dict:
    response = client.get("/v1/audit", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_audit_needs_the_admin_scope(client, assess_headers):
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers=assess_headers).status_code == 403


def test_every_admin_change_is_recorded_newest_first(client, admin_headers, services):
    client.post("/v1/lists", json={"name": "wave-7", "kind": "ip", "action": "challenge"}, headers=admin_headers)
    client.post("/v1/lists/wave-7/entries", json={"values": ["203.0.113.0/24", "198.51.100.7"], "reason": "wave 7"}, headers=admin_headers)
    client.post("/v1/lists/wave-7/entries", json={"values": ["198.51.100.7"], "reason": "wave 7"}, headers=admin_headers)  # no change
    client.put("/v1/lists/wave-7/entries", json={"values": ["198.51.100.7", "192.0.2.1"]}, headers=admin_headers)
    client.delete("/v1/lists/wave-7/entries?value=192.0.2.1", headers=admin_headers)
    client.delete("/v1/lists/wave-7/entries?source=key:alice-admin", headers=admin_headers)
    client.put("/v1/policy", json=DEFAULT, headers=admin_headers)
    with services.database.transaction() as session:
        revoke_api_key("backend", session=session)

    items = audit(client, admin_headers)["items"]
    actions = [item["action"] for item in items]
    assert actions[:7] == ["key.revoke", "policy.update", "list.remove_source", "list.remove", "list.replace", "list.add", "list.create"]
    assert {"key.create"} <= set(actions)
    by_action = {item["action"]: item for item in items[:7]}
    assert by_action["list.add"]["actor"] == "alice-admin"
    assert by_action["list.add"]["target"] == "wave-7"
    assert by_action["list.add"]["detail"] == {"list": "wave-7", "added": 2, "updated": 0, "source": "key:alice-admin",
                                                "values": ["203.0.113.0/24", "198.51.100.7"]}
    assert by_action["list.replace"]["detail"] | {"list": None} == {
        "list": None, "added": 1, "removed": 1, "total": 2, "source": "key:alice-admin",
        "added_values": ["192.0.2.1"], "removed_values": ["203.0.113.0/24"],
    }
    assert by_action["list.remove"]["detail"]["values"] == ["192.0.2.1"]
    assert by_action["list.remove_source"]["detail"]["removed"] == 1
    assert by_action["policy.update"]["target"] == "version 2"
    assert by_action["list.create"]["detail"] == {"kind": "ip", "action": "challenge", "description": ""}
    ats = [item["at"] for item in items]
    assert ats == sorted(ats, reverse=True)


def test_large_changes_are_counted_without_listing_every_value(client, admin_headers):
    values = [f"host{i}.example-mail.com" for i in range(AUDIT_VALUES_LIMIT + 1)]
    client.post("/v1/lists/blocked-domains/entries", json={"values": values}, headers=admin_headers)
    event = audit(client, admin_headers, limit=1)["items"][0]
    assert event["detail"]["added"] == len(values) and "values" not in event["detail"]


def test_audit_pages_with_an_opaque_cursor(client, admin_headers):
    for i in range(7):
        client.post("/v1/lists/blocked-asns/entries", json={"values": [f"AS{64500 + i}"]}, headers=admin_headers)
    everything = audit(client, admin_headers, limit=500)["items"]
    seen, cursor = [], None
    while True:
        page = audit(client, admin_headers, limit=3, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 3
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert len({item["id"] for item in seen}) == len(seen) >= 7


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"limit": 10**20}, {"cursor": "%%%"}, {"cursor": "eyJiZWZvcmUiOiJ4In0"}])
def test_bad_audit_parameters_are_422(client, admin_headers, params):
    assert client.get("/v1/audit", query_string=params, headers=admin_headers).status_code == 422


def test_audit_filters_by_actor_action_target_and_time(client, admin_headers, services):
    with services.database.transaction() as session:
        bob = create_api_key("bob-admin", ["admin"], session=session)
    client.post("/v1/lists/blocked-domains/entries", json={"values": ["a.example"]}, headers=admin_headers)
    client.post("/v1/lists/blocked-ips/entries", json={"values": ["192.0.2.1"]}, headers=bearer(bob))
    client.put("/v1/policy", json=DEFAULT, headers=bearer(bob))

    def found(**params) -> list[tuple[str, str, str]]:
        response = client.get("/v1/audit", query_string=params, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
        return [(item["actor"], item["action"], item["target"]) for item in response.get_json()["items"]]

    assert found(actor="bob-admin") == [("bob-admin", "policy.update", "version 2"), ("bob-admin", "list.add", "blocked-ips")]
    assert found(action="list") == [("bob-admin", "list.add", "blocked-ips"), ("alice-admin", "list.add", "blocked-domains")]
    assert found(action="list.add", target="DOMAINS") == [("alice-admin", "list.add", "blocked-domains")]
    assert found(action="lis") == []
    assert found(since="2099-01-01T00:00:00Z") == []
    assert len(found(until="2099-01-01T00:00:00Z", actor="alice-admin")) == 1
    assert client.get("/v1/audit?since=yesterday", headers=admin_headers).status_code == 422
    assert client.get("/v1/audit?actor=%00", headers=admin_headers).status_code == 422
