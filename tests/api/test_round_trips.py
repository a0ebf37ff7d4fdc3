"""On PostgreSQL an assessment costs two round trips: one read, one write (counted by a proxy
that reads the wire protocol), with or without hot keys kept in memory, webhooks subscribed
and an Idempotency-Key."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.contract import contract_app
from tests.support.pg_proxy import PostgresProxy


@pytest.fixture
def proxied(settings, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("round trips are a PostgreSQL matter")
    with PostgresProxy() as proxy:
        url = sa.engine.make_url(database_url).set(host="127.0.0.1", port=proxy.port, query={"sslmode": "disable"})
        with contract_app(settings.with_overrides(database_url=url.render_as_string(hide_password=False))) as app:
            yield app, proxy


def test_an_assessment_is_one_read_and_one_write(proxied, assess_headers, admin_headers):
    app, proxy = proxied
    client = app.test_client()
    subscribed = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["assessment.created"]},
                             headers=admin_headers)
    assert subscribed.status_code == 201
    signup = {"ip": "198.51.100.30", "phone": "+14155550199", "device_id": "emu-9"}
    recent = app.extensions["verify"].assessor.recent
    for n in range(12):  # warms the worker's copies; the network, phone and device are kept in memory after the first
        assert client.post("/v1/assessments", json={**signup, "email": f"w{n}@farm.test"}, headers=assess_headers).status_code == 201
        recent.wanted.update({("ip_network", "198.51.100.0/24"), ("phone_e164", "+14155550199"), ("device_id", "emu-9")})
    assert len(recent.entries) == 3  # their counts and samples come from memory now, beside the SQL of the others
    proxy.reset()
    for n in range(20):
        headers = {**assess_headers, "Idempotency-Key": f"k{n}"}
        assert client.post("/v1/assessments", json={**signup, "email": f"m{n}@farm.test"}, headers=headers).status_code == 201
    assert proxy.round_trips == 40
