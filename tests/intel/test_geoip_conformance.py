"""MaxMind's own test databases, read through the service, against MaxMind's source JSON.

The data is third-party (github.com/maxmind/MaxMind-DB, see its README.md); CI checks the
repository out beside a `shared/` folder that holds it. Every network in each source file is
looked up at its first and last address, and the signals must say what the record says.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import pytricia

from verify.intel.geoip import ANONYMITY_FLAGS, GeoIP, MaxMindDatabase, NullDatabase

REPO = Path(__file__).resolve().parents[2]


def conformance_dir() -> Path | None:
    """../shared/conformance/maxmind from the repository (or from a worktree's parent folder)."""
    if os.environ.get("VERIFY_CONFORMANCE_DIR"):
        return Path(os.environ["VERIFY_CONFORMANCE_DIR"]) / "maxmind"
    for folder in REPO.parents:
        candidate = folder / "shared" / "conformance" / "maxmind"
        if (candidate / "test-data").is_dir():
            return candidate
    return None


DATA = conformance_dir()
pytestmark = pytest.mark.skipif(
    DATA is None,
    reason="MaxMind conformance data not found: expected ../shared/conformance/maxmind beside the repository "
    "(or set VERIFY_CONFORMANCE_DIR to the conformance folder)",
)

# database name -> the role the service reads it as
DATABASES = {
    "GeoIP2-City-Test": "city",
    "GeoIP2-Country-Test": "city",
    "GeoLite2-City-Test": "city",
    "GeoLite2-Country-Test": "city",
    "GeoIP2-Enterprise-Test": "city",
    "GeoLite2-ASN-Test": "asn",
    "GeoIP2-Anonymous-IP-Test": "anonymous",
    "GeoIP-Anonymous-Plus-Test": "anonymous",
}


def as_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """`::a.b.c.d/N` (N >= 96) is an IPv4 network in the IPv6 tree, per the data's README."""
    # Some source networks carry host bits (::74.209.24.0/116); the writer masks them, so do we.
    network = ipaddress.ip_network(text, strict=False)
    if network.version == 6 and network.prefixlen >= 96 and int(network.network_address) < 2**32:
        return ipaddress.ip_network(f"{ipaddress.IPv4Address(int(network.network_address))}/{network.prefixlen - 96}")
    return network


@cache
def ground_truth(name: str) -> list[tuple[str, dict[str, Any]]]:
    """(address, record of the most specific source network holding it) for each network's ends."""
    entries = [(as_network(cidr), record) for item in json.loads((DATA / "source-data" / f"{name}.json").read_text()) for cidr, record in item.items()]
    trees = {4: pytricia.PyTricia(32), 6: pytricia.PyTricia(128)}
    for network, record in entries:
        trees[network.version][str(network)] = record
    cases = []
    for network, _ in entries:
        for address in (network.network_address, network.broadcast_address):
            cases.append((str(address), trees[address.version][str(address)]))
    return cases


def expected_signals(role: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the record says, written out from MaxMind's documented layouts."""
    if role == "city":
        traits = record.get("traits", {})
        expected = {
            "country": record.get("country", {}).get("iso_code"),
            "registered_country": record.get("registered_country", {}).get("iso_code"),
            "connection_type": traits.get("connection_type"),
            "user_type": traits.get("user_type"),
            # with no ASN database, Enterprise traits name the autonomous system where they can
            "asn": traits.get("autonomous_system_number", "unknown"),
        }
        return expected
    if role == "asn":
        return {"asn": record["autonomous_system_number"], "as_org": record.get("autonomous_system_organization")}
    expected = {flag: record.get(flag, False) for flag in ANONYMITY_FLAGS}
    for extra in ("anonymizer_confidence", "network_last_seen", "provider_name"):
        expected[extra] = record.get(extra)
    return expected


@pytest.fixture(scope="module")
def readers() -> dict[str, GeoIP]:
    built = {}
    for name, role in DATABASES.items():
        database = MaxMindDatabase(role, str(DATA / "test-data" / f"{name}.mmdb"), reload_seconds=3600)
        built[name] = GeoIP(**{r: database if r == role else NullDatabase() for r in ("city", "asn", "anonymous")})
    return built


@pytest.mark.parametrize("name", DATABASES)
def test_signals_match_the_source_records(readers, name):
    role = DATABASES[name]
    cases = ground_truth(name)
    assert len(cases) >= 20
    mismatches = []
    for address, record in cases:
        expected = expected_signals(role, record)
        described = readers[name].describe(address)
        got = {key: described.get(key) for key in expected}
        if got != expected:
            mismatches.append((address, expected, got))
    assert mismatches == []


@pytest.mark.parametrize("name", DATABASES)
def test_status_reads_the_metadata(readers, name):
    (status,) = readers[name].statuses(now=datetime.now(timezone.utc))
    assert status.status in ("ok", "stale")
    assert status.database_type == name.removesuffix("-Test")
    assert status.build_date is not None and status.error is None


def test_roles_the_service_does_not_read_stay_unknown(readers):
    described = readers["GeoLite2-ASN-Test"].describe("1.0.0.1")
    assert described["asn"] == 15169
    assert described["country"] == "unknown"
    assert described["is_tor_exit_node"] == "unknown"
