"""Concurrent changes to one list are serialised: a replace leaves exactly one body, never a union."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from verify.store.models import ListDef, ListEntry


def stored_values(services, name: str) -> set[str]:
    with services.database.engine.connect() as connection:
        return set(connection.execute(
            sa.select(ListEntry.value).join(ListDef, ListDef.id == ListEntry.list_id).where(ListDef.name == name)
        ).scalars())


def test_two_concurrent_replaces_leave_exactly_one_body(app, services, admin_headers):
    bodies = {
        prefix: {f"{prefix}{i}.example" for i in range(1500)}
        for prefix in ("first", "second")
    }
    for _ in range(3):
        start = threading.Barrier(2)
        statuses = []

        def replace(values: set[str]) -> None:
            client = app.test_client()
            start.wait()
            response = client.put("/v1/lists/blocked-domains/entries", json={"values": sorted(values)}, headers=admin_headers)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=replace, args=(values,)) for values in bodies.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200, 200]
        assert stored_values(services, "blocked-domains") in list(bodies.values())
