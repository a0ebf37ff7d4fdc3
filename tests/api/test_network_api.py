"""Phone and network signals, reasons and regional lists over HTTP, with real .mmdb files."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.cli import ScriptInfo

from tests.support import mmdb
from tests.support.contract import ContractClient
from verify.app import create_app
from verify.cli import main
from verify.settings import Settings
from verify.store.lists import get_list, insert_entries

FLAGS = ("is_anonymous", "is_anonymous_vpn", "is_hosting_provider", "is_public_proxy", "is_residential_proxy", "is_tor_exit_node")


def make_app(settings: Settings):
    app = create_app(settings)
    app.test_client_class = ContractClient
    return app


@pytest.fixture
def app(geoip_settings):
    app = make_app(geoip_settings)
    yield app
    app.extensions["verify"].database.dispose()


def assess(client, headers, **fields):
    response = client.post("/v1/assessments", json={"email": "pat.lee@gmail.com", **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def codes(body) -> set[str]:
    return {reason["code"] for reason in body["reasons"]}


def add_to_list(services, name: str, *values: str) -> None:
    with services.database.transaction() as session:
        insert_entries(get_list(name, session=session), values, source="test", session=session)


def stored_keys(services, assessment_id: str) -> dict:
    with services.database.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT phone_e164, phone_block, ip, ip_network, asn FROM assessments WHERE id = :id"),
            {"id": assessment_id},
        ).mappings().one()
    return dict(row)


def test_clean_signup_shows_every_signal(client, assess_headers, services):
    body = assess(client, assess_headers, ip="81.2.69.10", phone="07400 123456", country="GB")
    assert body["verdict"] == "allow" and body["reasons"] == []
    ip = body["signals"]["ip"]
    assert ip == {
        "provided": True,
        "address": "81.2.69.10",
        "version": 4,
        "scope": "global",
        "network": "81.2.69.0/24",
        "country": "GB",
        "registered_country": "GB",
        "asn": 20712,
        "as_org": "Andrews & Arnold Ltd",
        **{flag: False for flag in FLAGS},
        "declared_country": "GB",
    }
    phone = body["signals"]["phone"]
    assert {k: phone[k] for k in ("provided", "e164", "valid", "possible", "type", "country", "carrier", "type_source", "region_hint")} == {
        "provided": True,
        "e164": "+447400123456",
        "valid": True,
        "possible": True,
        "type": "mobile",
        "country": "GB",
        "carrier": "Three",
        "type_source": "number ranges",
        "region_hint": "GB",
    }
    assert stored_keys(services, body["id"]) == {
        "phone_e164": "+447400123456",
        "phone_block": "+447400123",
        "ip": "81.2.69.10",
        "ip_network": "81.2.69.0/24",
        "asn": 20712,
    }


def test_ipv6_signals_and_keys(client, assess_headers, services):
    body = assess(client, assess_headers, ip="2a02:1000::abcd")
    ip = body["signals"]["ip"]
    assert (ip["version"], ip["network"], ip["country"], ip["asn"], ip["is_residential_proxy"]) == (6, "2a02:1000::/64", "DE", 3320, False)
    assert stored_keys(services, body["id"])["asn"] == 3320


def test_national_number_is_read_in_the_ip_country_when_none_is_declared(client, assess_headers):
    phone = assess(client, assess_headers, ip="81.2.69.10", phone="07400 123456")["signals"]["phone"]
    assert (phone["e164"], phone["region_hint"], phone["region_hint_source"]) == ("+447400123456", "GB", "ip_country")


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"ip": "45.55.3.4"}, {"ip.hosting"}),
        ({"ip": "185.220.101.9"}, {"ip.tor"}),
        ({"ip": "146.70.9.9"}, {"ip.anonymous_vpn"}),
        ({"ip": "5.188.1.2"}, {"ip.public_proxy"}),
        ({"ip": "2a02:1000:dead::5"}, {"ip.residential_proxy"}),
        ({"ip": "10.1.2.3"}, {"ip.invalid_or_private"}),
        ({"ip": "::1"}, {"ip.invalid_or_private"}),
        ({"ip": "198.51.100.7"}, {"ip.invalid_or_private"}),
        ({"ip": "81.2.69.10", "country": "FR"}, {"ip.country_mismatch"}),
        ({"phone": "+445612345678"}, {"phone.voip"}),
        ({"phone": "+449012345678"}, {"phone.premium_or_special"}),
        ({"phone": "+4918012345"}, {"phone.premium_or_special"}),
        ({"phone": "call me maybe"}, {"phone.invalid"}),
        ({"phone": "0301234567"}, {"phone.invalid"}),
        ({"phone": "+4915112345678", "ip": "216.160.83.7", "country": "US"}, {"phone.country_mismatch"}),
    ],
    ids=[
        "hosting", "tor", "vpn", "public-proxy", "residential-proxy-ipv6", "private", "loopback-ipv6", "documentation",
        "ip-country-mismatch", "voip", "premium", "shared-cost", "unparseable-phone", "national-phone-without-region",
        "phone-country-mismatch",
    ],
)
def test_each_reason(client, assess_headers, fields, expected):
    body = assess(client, assess_headers, **fields)
    assert codes(body) == expected
    assert all(reason["points"] > 0 for reason in body["reasons"])


def test_unparseable_phone_is_assessed_not_rejected(client, assess_headers, services):
    body = assess(client, assess_headers, phone="++--")
    assert body["signals"]["phone"]["parsed"] is False and body["signals"]["phone"]["error"]
    assert stored_keys(services, body["id"])["phone_e164"] is None


@pytest.mark.parametrize(
    "list_name, values, fields, code",
    [
        ("blocked-countries", ["DE"], {"ip": "2a02:1000::1"}, "list.deny"),
        ("challenged-countries", ["DE"], {"ip": "81.2.69.10", "phone": "+4915112345678"}, "list.challenge"),
        ("blocked-asns", ["20712"], {"ip": "81.2.69.10"}, "list.deny"),
        ("challenged-asns", ["3320"], {"ip": "2a02:1000::1"}, "list.challenge"),
        ("blocked-ips", ["2a02:1000::/32"], {"ip": "2a02:1000::1"}, "list.deny"),
        ("challenged-ips", ["81.2.69.0/24"], {"ip": "81.2.69.10"}, "list.challenge"),
        ("blocked-phone-prefixes", ["4456"], {"phone": "+445612345678"}, "list.deny"),
    ],
    ids=["blocked-ip-country", "challenged-phone-country", "blocked-asn", "challenged-asn", "blocked-ipv6-network", "challenged-ip", "blocked-phone-prefix"],
)
def test_regional_lists(client, assess_headers, services, list_name, values, fields, code):
    before = assess(client, assess_headers, **fields)
    add_to_list(services, list_name, *values)
    after = assess(client, assess_headers, **fields)
    assert code not in codes(before) and code in codes(after)
    assert before["verdict"] == "allow"
    assert after["verdict"] == {"list.deny": "deny", "list.challenge": "challenge"}[code]
    assert any(match["list"] == list_name for match in after["signals"]["lists"])


def test_one_country_on_both_ip_and_phone_matches_once(client, assess_headers, services):
    add_to_list(services, "challenged-countries", "GB")
    body = assess(client, assess_headers, ip="81.2.69.10", phone="+447400123456")
    assert [reason["code"] for reason in body["reasons"]] == ["list.challenge"]


def test_allow_listed_private_address_is_not_a_reason(client, assess_headers, services):
    add_to_list(services, "allowed-ips", "10.0.0.0/8")
    body = assess(client, assess_headers, ip="10.1.2.3")
    assert codes(body) == {"list.allow"}
    assert body["verdict"] == "allow"


# -- operations and missing databases --------------------------------------------------------

def test_readyz_lists_each_database(client, geoip_files, admin_headers):
    body = client.get("/readyz", headers=admin_headers).get_json()
    geoip = {item["role"]: item for item in body["checks"]["geoip"]}
    assert {role: item["status"] for role, item in geoip.items()} == {"city": "ok", "asn": "ok", "anonymous": "ok"}
    assert geoip["asn"]["database_type"] == "GeoLite2-ASN"
    assert geoip["city"]["path"] == str(geoip_files["city"])


def test_missing_and_corrupt_files_are_reported_and_read_unknown(settings, geoip_files, tmp_path, keys, assess_headers):
    corrupt = tmp_path / "GeoLite2-ASN.mmdb"
    corrupt.write_bytes(b"not a maxmind database" * 50)
    app = make_app(settings.with_overrides(
        geoip_city_db=str(tmp_path / "absent.mmdb"),
        geoip_asn_db=str(corrupt),
        geoip_anonymous_db=str(geoip_files["anonymous"]),
    ))
    try:
        client = app.test_client()
        response = client.get("/readyz")
        assert response.status_code == 200
        statuses = {item["role"]: item["status"] for item in response.get_json()["checks"]["geoip"]}
        assert statuses == {"city": "missing", "asn": "corrupt", "anonymous": "ok"}
        body = assess(client, assess_headers, ip="185.220.101.9", country="DE")
        ip = body["signals"]["ip"]
        assert (ip["country"], ip["asn"], ip["as_org"]) == ("unknown", "unknown", "unknown")
        assert ip["is_tor_exit_node"] is True
        assert codes(body) == {"ip.tor"}
    finally:
        app.extensions["verify"].database.dispose()


def test_without_databases_flags_are_unknown_not_false(settings, keys, assess_headers):
    app = make_app(settings)
    try:
        client = app.test_client()
        ip = assess(client, assess_headers, ip="185.220.101.9")["signals"]["ip"]
        assert all(ip[flag] == "unknown" for flag in FLAGS)
        assert client.get("/readyz").get_json()["checks"]["geoip"] == []
    finally:
        app.extensions["verify"].database.dispose()


def test_replaced_database_is_seen_by_requests_in_flight(settings, geoip_files, tmp_path, keys, assess_headers):
    live = tmp_path / "GeoIP2-City.mmdb"
    mmdb.replace_file(geoip_files["city"], live)
    moved = mmdb.write_mmdb(tmp_path / "next.mmdb", "GeoIP2-City", {**mmdb.CITY, "81.2.69.0/24": mmdb.country("IE")})
    interval = 0.2
    app = make_app(settings.with_overrides(geoip_city_db=str(live), geoip_reload_seconds=interval))
    failures: list[str] = []
    seen: list[tuple[float, float, str]] = []  # (sent, answered, country)
    stop = threading.Event()

    def signups() -> None:
        client = app.test_client()
        while not stop.is_set():
            try:
                sent = time.monotonic()
                response = client.post("/v1/assessments", json={"email": "pat@gmail.com", "ip": "81.2.69.10"}, headers=assess_headers)
                if response.status_code != 201:
                    failures.append(f"{response.status_code}: {response.get_data(as_text=True)[:200]}")
                    continue
                seen.append((sent, time.monotonic(), response.get_json()["signals"]["ip"]["country"]))
            except Exception as error:  # reported below as a failed request
                failures.append(repr(error))

    threads = [threading.Thread(target=signups) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        while len(seen) < 5 and not failures:
            time.sleep(0.01)
        mmdb.replace_file(moved, live)
        replaced_at = time.monotonic()
        deadline = replaced_at + 10
        while not any(country == "IE" for _, _, country in list(seen)) and time.monotonic() < deadline and not failures:
            time.sleep(0.01)
        time.sleep(interval)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        app.extensions["verify"].database.dispose()
    assert failures == []
    assert {country for _, _, country in seen} == {"GB", "IE"}
    first_new = min(answered for _, answered, country in seen if country == "IE")
    # the interval, plus the time one request takes on a busy test machine
    assert first_new - replaced_at < interval + 2
    # A request sent before the swap may still answer from the old file, however late it ends
    # on a busy machine; every request sent once the new file was in use reads the new one.
    assert all(country == "IE" for sent, _, country in seen if sent > first_new + interval)


# -- verify geoip info ------------------------------------------------------------------------

def run_cli(settings: Settings, *args: str):
    app = create_app(settings)
    try:
        return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    finally:
        app.extensions["verify"].database.dispose()


def test_geoip_info_prints_each_database(geoip_settings):
    result = run_cli(geoip_settings, "geoip", "info")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["city", "asn", "anonymous"]
    assert "GeoLite2-ASN" in lines[1] and "\tok\t" in lines[1] and "age 1 days" in lines[1]
    assert "warning" not in result.output


def test_geoip_info_warns_about_old_and_missing_databases(settings, tmp_path):
    old = mmdb.write_mmdb(tmp_path / "old.mmdb", "GeoLite2-ASN", mmdb.ASN, built_days_ago=40)
    result = run_cli(settings.with_overrides(geoip_asn_db=str(old), geoip_city_db=str(tmp_path / "gone.mmdb")), "geoip", "info")
    assert result.exit_code == 1
    assert "warning: the asn database is 40 days old" in result.stderr
    assert "warning: the city database: no file at" in result.stderr
    assert "stale" in result.stdout and "missing" in result.stdout


def test_geoip_info_without_databases(settings):
    result = run_cli(settings, "geoip", "info")
    assert result.exit_code == 0 and "no GeoIP database is configured" in result.stdout
