"""/readyz says how DNS is doing; a resolver that answers NXDOMAIN for everything degrades
the MX check to unknown instead of denying every company address."""

from __future__ import annotations

import pytest

from tests.support.contract import ContractClient
from tests.support.dns_server import CANARY, LoopbackDNS
from verify.app import create_app


@pytest.fixture
def broken_dns():
    server = LoopbackDNS().start()
    server.resolver.nxdomain_for_everything = True
    yield server
    server.stop()


@pytest.fixture
def degraded_client(settings, broken_dns):
    app = create_app(settings.with_overrides(dns_nameservers=(broken_dns.nameserver,)))
    app.test_client_class = ContractClient
    yield app.test_client()
    app.extensions["verify"].database.dispose()


def test_readyz_shows_a_passing_canary(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["dns"] == {"status": "ok", "canary": CANARY}


def test_readyz_says_off_when_the_mx_check_is_off(settings):
    app = create_app(settings.with_overrides(mx_check=False))
    app.test_client_class = ContractClient
    assert app.test_client().get("/readyz").get_json()["checks"]["dns"] == {"status": "off"}
    app.extensions["verify"].database.dispose()


def test_nxdomain_for_everything_is_degraded_not_a_deny(degraded_client, assess_headers):
    response = degraded_client.post("/v1/assessments", json={"email": "pat@gone.example-nx.com"}, headers=assess_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["signals"]["email"]["mx"] == "unknown"
    assert "email.undeliverable" not in {reason["code"] for reason in body["reasons"]}
    assert body["verdict"] != "deny"
    ready = degraded_client.get("/readyz")
    # Degraded, not down: the service still answers, without the MX penalty.
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["dns"] == {"status": "canary_failing", "canary": CANARY}
