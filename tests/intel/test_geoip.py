"""GeoIP readers: values from real .mmdb files, unknown when a file cannot answer, reload on replace."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from tests.support import mmdb
from verify.intel.geoip import GeoIP, MaxMindDatabase, NullDatabase

NOW = datetime.now(timezone.utc)
FLAGS = ("is_anonymous", "is_anonymous_vpn", "is_hosting_provider", "is_public_proxy", "is_residential_proxy", "is_tor_exit_node")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def geoip(geoip_files) -> GeoIP:
    return GeoIP(
        city=MaxMindDatabase("city", str(geoip_files["city"]), reload_seconds=60),
        asn=MaxMindDatabase("asn", str(geoip_files["asn"]), reload_seconds=60),
        anonymous=MaxMindDatabase("anonymous", str(geoip_files["anonymous"]), reload_seconds=60),
    )


@pytest.mark.parametrize(
    "address, expected",
    [
        ("81.2.69.10", {"country": "GB", "asn": 20712, "as_org": "Andrews & Arnold Ltd", "is_anonymous": False}),
        ("::ffff:81.2.69.10", {"country": "GB", "asn": 20712}),
        ("2a02:1000::1", {"country": "DE", "asn": 3320, "is_residential_proxy": False}),
        ("2a02:1000:dead::7", {"country": "DE", "asn": 3320, "is_anonymous": True, "is_residential_proxy": True}),
        ("146.70.1.1", {"country": "CH", "registered_country": "PA", "is_anonymous_vpn": True, "is_tor_exit_node": False}),
        ("149.101.100.1", {"country": "US", "asn": None, "connection_type": "Cellular", "user_type": "cellular"}),
        ("9.9.9.9", {"country": None, "registered_country": None, "asn": None, "as_org": None, **{flag: False for flag in FLAGS}}),
    ],
    ids=["ipv4", "ipv4-mapped-ipv6", "ipv6", "ipv6-residential-proxy", "vpn-registered-elsewhere", "enterprise-traits", "in-no-database"],
)
def test_values_from_the_databases(geoip, address, expected):
    described = geoip.describe(address)
    assert {key: described.get(key) for key in expected} == expected


def test_no_database_configured_reads_unknown_never_false():
    described = GeoIP.unconfigured().describe("81.2.69.10")
    assert set(described.values()) == {"unknown"}
    assert set(described) >= {"country", "registered_country", "asn", "as_org", *FLAGS}
    assert GeoIP.unconfigured().statuses(now=NOW) == []


def test_ipv6_asked_of_an_ipv4_only_file_is_unknown(tmp_path):
    path = mmdb.write_mmdb(tmp_path / "v4.mmdb", "GeoLite2-ASN", {"81.2.69.0/24": mmdb.asn(20712, "AA")}, ip_version=4)
    geoip = GeoIP(city=NullDatabase(), asn=MaxMindDatabase("asn", str(path), reload_seconds=60), anonymous=NullDatabase())
    assert geoip.describe("81.2.69.1")["asn"] == 20712
    assert geoip.describe("2a02:1000::1")["asn"] == "unknown"


def test_status_of_a_good_file(geoip, geoip_files):
    statuses = {status.role: status for status in geoip.statuses(now=NOW)}
    assert set(statuses) == {"city", "asn", "anonymous"}
    city = statuses["city"]
    assert (city.status, city.database_type, city.path, city.error) == ("ok", "GeoIP2-City", str(geoip_files["city"]), None)
    assert 0.9 <= city.age_days <= 1.1


def test_old_file_is_stale(tmp_path):
    path = mmdb.write_mmdb(tmp_path / "old.mmdb", "GeoLite2-ASN", mmdb.ASN, built_days_ago=45)
    status = MaxMindDatabase("asn", str(path), reload_seconds=60).status(now=NOW)
    assert status.status == "stale" and 44.9 <= status.age_days <= 45.1


@pytest.mark.parametrize(
    "content, problem, message",
    [
        (None, "missing", "no file"),
        (b"", "corrupt", "MaxMind DB"),
        (b"this is not a database" * 100, "corrupt", "MaxMind DB"),
    ],
    ids=["missing", "empty", "garbage"],
)
def test_missing_or_corrupt_file_reads_unknown(tmp_path, content, problem, message):
    path = tmp_path / "city.mmdb"
    if content is not None:
        path.write_bytes(content)
    database = MaxMindDatabase("city", str(path), reload_seconds=60)
    status = database.status(now=NOW)
    assert (status.status, status.database_type, status.build_date) == (problem, None, None)
    assert message in status.error
    geoip = GeoIP(city=database, asn=NullDatabase(), anonymous=NullDatabase())
    assert geoip.describe("81.2.69.10")["country"] == "unknown"


def test_truncated_file_is_corrupt(tmp_path, geoip_files):
    path = tmp_path / "city.mmdb"
    path.write_bytes(geoip_files["city"].read_bytes()[:200])
    assert MaxMindDatabase("city", str(path), reload_seconds=60).status(now=NOW).status == "corrupt"


def test_a_database_of_the_wrong_kind_is_refused(geoip_files):
    # An ASN file read as the anonymity database would clear every address.
    database = MaxMindDatabase("anonymous", str(geoip_files["asn"]), reload_seconds=60)
    status = database.status(now=NOW)
    assert status.status == "corrupt" and "GeoLite2-ASN" in status.error
    assert database.lookup("45.55.1.1").known is False


def test_replaced_file_is_read_after_the_interval(tmp_path):
    clock = FakeClock()
    first = mmdb.write_mmdb(tmp_path / "a.mmdb", "GeoLite2-ASN", {"81.2.69.0/24": mmdb.asn(1, "Old")})
    second = mmdb.write_mmdb(tmp_path / "b.mmdb", "GeoLite2-ASN", {"81.2.69.0/24": mmdb.asn(2, "New")})
    live = tmp_path / "GeoLite2-ASN.mmdb"
    mmdb.replace_file(first, live)
    database = MaxMindDatabase("asn", str(live), reload_seconds=30, clock=clock)
    assert database.lookup("81.2.69.1").record["autonomous_system_number"] == 1
    mmdb.replace_file(second, live)
    clock.now += 29
    assert database.lookup("81.2.69.1").record["autonomous_system_number"] == 1
    clock.now += 2
    assert database.lookup("81.2.69.1").record["autonomous_system_number"] == 2


def test_file_that_appears_later_is_picked_up(tmp_path, geoip_files):
    clock = FakeClock()
    live = tmp_path / "GeoIP2-City.mmdb"
    database = MaxMindDatabase("city", str(live), reload_seconds=5, clock=clock)
    assert database.lookup("81.2.69.1").known is False
    mmdb.replace_file(geoip_files["city"], live)
    clock.now += 6
    assert database.lookup("81.2.69.1").record["country"]["iso_code"] == "GB"
    assert database.status(now=NOW).status == "ok"


def test_corrupt_replacement_keeps_the_previous_copy_serving(tmp_path, geoip_files):
    clock = FakeClock()
    live = tmp_path / "GeoIP2-City.mmdb"
    mmdb.replace_file(geoip_files["city"], live)
    database = MaxMindDatabase("city", str(live), reload_seconds=5, clock=clock)
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"\0" * 4096)
    mmdb.replace_file(broken, live)
    clock.now += 6
    assert database.lookup("81.2.69.1").record["country"]["iso_code"] == "GB"
    status = database.status(now=NOW)
    assert status.status == "corrupt" and "still serving" in status.error
    assert status.database_type == "GeoIP2-City"
    # once a good file is back, the problem clears
    mmdb.replace_file(geoip_files["city"], live)
    clock.now += 6
    assert database.status(now=NOW).status == "ok"


def test_lookups_never_fail_while_the_file_is_replaced(tmp_path):
    versions = [
        mmdb.write_mmdb(tmp_path / f"v{n}.mmdb", "GeoLite2-ASN", {"81.2.69.0/24": mmdb.asn(n, f"AS{n}"), "2a02:1000::/32": mmdb.asn(n, f"AS{n}")})
        for n in (1, 2)
    ]
    live = tmp_path / "GeoLite2-ASN.mmdb"
    mmdb.replace_file(versions[0], live)
    database = MaxMindDatabase("asn", str(live), reload_seconds=0.001)
    seen: set[int] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                for address in ("81.2.69.1", "2a02:1000::1"):
                    lookup = database.lookup(address)
                    assert lookup.known, "a lookup found no database while the file was replaced"
                    seen.add(lookup.record["autonomous_system_number"])
            except BaseException as error:  # collected and reported by the main thread
                failures.append(error)
                return

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(1, 41):
        mmdb.replace_file(versions[n % 2], live)
        time.sleep(0.003)
    deadline = time.monotonic() + 5
    while seen != {1, 2} and not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert seen == {1, 2}
