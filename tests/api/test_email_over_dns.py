"""The MX outcome as it shows in assessments: undeliverable denies, unknown never penalises."""

from __future__ import annotations

import pytest


def assess(client, headers, email):
    response = client.post("/v1/assessments", json={"email": email}, headers=headers)
    assert response.status_code == 201
    return response.get_json()


@pytest.mark.parametrize("domain", ["nullmx.org", "no-records.net", "gone.example-nx.com"])
def test_undeliverable_domains_are_denied(client, assess_headers, domain):
    body = assess(client, assess_headers, f"pat@{domain}")
    assert "email.undeliverable" in {r["code"] for r in body["reasons"]}
    assert body["verdict"] == "deny"


@pytest.mark.parametrize("domain", ["slow-dns.com", "servfail.com"])
def test_dns_trouble_is_unknown_and_never_a_penalty(client, assess_headers, domain):
    body = assess(client, assess_headers, f"pat@{domain}")
    assert body["signals"]["email"]["mx"] == "unknown"
    assert body["reasons"] == []
    assert body["verdict"] == "allow"


def test_deliverable_business_domain_is_allowed(client, assess_headers):
    body = assess(client, assess_headers, "pat.smith@acme-corp.io")
    assert body["signals"]["email"]["mx"] == "ok"
    assert body["verdict"] == "allow"


def test_known_provider_is_not_looked_up(client, assess_headers, dns_server):
    before = len(dns_server.resolver.queries)
    body = assess(client, assess_headers, "pat.smith@gmail.com")
    assert body["signals"]["email"]["mx"] == "known_provider"
    assert len(dns_server.resolver.queries) == before
