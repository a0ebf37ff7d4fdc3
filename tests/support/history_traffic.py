"""Helpers for history tests: posting signups at chosen times, pretend GeoIP, test mail domains."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

# Domains the loopback DNS answers with an MX, so that only history speaks about them.
MAIL_DOMAINS = ("northwind.example", "fresh-deals.shop", "contoso-labs.example", "bulkreg.example", "tinyco.example")

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=20)


def add_mail_domains(dns_server) -> None:
    for domain in MAIL_DOMAINS:
        dns_server.resolver.zone.setdefault(f"{domain}.", [("MX", f"10 mx.{domain}.")])


def at(minutes: float) -> str:
    """An RFC 3339 time `minutes` after START (twenty days ago)."""
    return (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def post(client, headers, email: str, minutes: float | None = None, **fields: Any) -> dict:
    body = {"email": email, **fields}
    if minutes is not None:
        body["occurred_at"] = at(minutes)
    response = client.post("/v1/assessments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def codes(assessment: dict) -> set[str]:
    return {reason["code"] for reason in assessment["reasons"]}


def pretend_geoip(services, networks: Mapping[str, Mapping[str, Any]]) -> None:
    """Stand in for the GeoIP readers of the network branch: CIDR -> ip signals (with "asn")."""
    table = [(ipaddress.ip_network(cidr), dict(info)) for cidr, info in networks.items()]
    assessor = services.assessor
    gather = type(assessor).gather

    def gather_with_network(signup):
        signals = gather(assessor, signup)
        if signup.ip:
            address = ipaddress.ip_address(signup.ip)
            for network, info in table:
                if address in network:
                    signals["ip"].update(info)  # the ASN key is derived from signals["ip"]["asn"]
                    break
        return signals

    assessor.gather = gather_with_network


FIRST = ("ann", "bob", "carla", "dev", "elena", "farid", "grace", "hiro", "ines", "jamal", "kofi", "lena",
         "marta", "nils", "omar", "priya", "quinn", "rosa", "sven", "tara", "umar", "vera", "wen", "yusuf", "zoe")
LAST = ("adams", "baker", "chen", "diaz", "evans", "fischer", "garcia", "haddad", "ito", "jensen", "khan", "lopez",
        "moreau", "novak", "okafor", "park", "quist", "rossi", "sato", "tanaka", "ueda", "vogel", "weber", "xu", "young")


def person(n: int) -> str:
    """A distinct, plain first.last name for the n-th honest person (625 of them)."""
    return f"{FIRST[n % len(FIRST)]}.{LAST[(n // len(FIRST)) % len(LAST)]}"
