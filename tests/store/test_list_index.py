"""The list index is built from whatever the table holds: a value it cannot read is skipped, not fatal."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from verify.store.lists import get_list, insert_entries
from verify.store.models import ListEntry, utcnow


def test_an_unreadable_stored_entry_is_skipped_with_a_warning(client, assess_headers, services, caplog):
    # An older version stored a zoned address; the current normaliser refuses one.
    with services.database.transaction() as session:
        blocked = get_list("blocked-ips", session=session)
        session.execute(sa.insert(ListEntry), [{
            "list_id": blocked.id, "value": "fe80::1%eth0", "reason": None, "source": "old-version",
            "expires_at": None, "created_at": utcnow(),
        }])
        insert_entries(blocked, ["203.0.113.7"], source="test", session=session)
    with caplog.at_level(logging.WARNING, logger="verify.store.snapshots"):
        response = client.post("/v1/assessments", json={"email": "pat.lee@gmail.com", "ip": "203.0.113.7"}, headers=assess_headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["verdict"] == "deny"  # the readable entry beside it still holds
    assert any("fe80::1%eth0" in record.getMessage() for record in caplog.records)
    again = client.post("/v1/assessments", json={"email": "sam.roe@gmail.com", "ip": "198.51.100.9"}, headers=assess_headers)
    assert again.status_code == 201, again.get_json()
