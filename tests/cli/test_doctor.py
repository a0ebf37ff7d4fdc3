"""`verify doctor`: one line per check of the configuration, non-zero exit when one fails."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from click.testing import CliRunner

from tests.support.dns_server import CANARY, free_udp_port
from verify.cli import main

REDIS = "redis://127.0.0.1:6379/0"


def closed_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env(database_url, dns_server, geoip_files, monkeypatch):
    """A healthy configuration: migrated database, all GeoIP files, a resolver whose canary answers, Redis."""
    monkeypatch.setenv("VERIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("VERIFY_DNS_NAMESERVERS", dns_server.nameserver)
    monkeypatch.setenv("VERIFY_DNS_CANARY", CANARY)
    monkeypatch.setenv("VERIFY_DNS_TIMEOUT", "0.5")
    monkeypatch.setenv("VERIFY_GEOIP_CITY_DB", str(geoip_files["city"]))
    monkeypatch.setenv("VERIFY_GEOIP_ASN_DB", str(geoip_files["asn"]))
    monkeypatch.setenv("VERIFY_GEOIP_ANONYMOUS_DB", str(geoip_files["anonymous"]))
    monkeypatch.setenv("VERIFY_RATE_LIMIT_STORAGE", REDIS)
    return monkeypatch


def doctor():
    result = CliRunner().invoke(main, ["doctor"], catch_exceptions=False)
    lines = {}
    for text in result.output.splitlines():
        status, check, _ = text.split(None, 2)
        lines[check] = (status, text)
    return result, lines


def test_a_healthy_configuration_passes(env):
    result, lines = doctor()
    assert result.exit_code == 0, result.output
    assert set(lines) == {"database", "migrations", "geoip.city", "geoip.asn", "geoip.anonymous", "dns", "rate-limit-storage"}
    assert all(status == "ok" for status, _ in lines.values()), result.output
    assert "GeoIP2-City" in lines["geoip.city"][1] and "days old" in lines["geoip.city"][1]


def test_an_unmigrated_database_fails(env, tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    env.setenv("VERIFY_DATABASE_URL", f"sqlite:///{path}")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["database"][0] == "ok"
    assert lines["migrations"][0] == "fail" and "verify db upgrade" in lines["migrations"][1]


def test_a_missing_sqlite_file_fails_and_is_not_created(env, tmp_path):
    path = tmp_path / "nowhere" / "verify.db"
    env.setenv("VERIFY_DATABASE_URL", f"sqlite:///{path}")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["database"][0] == "fail" and "does not exist" in lines["database"][1]
    assert not path.parent.exists()


def test_an_unreachable_database_fails_without_showing_its_password(env):
    env.setenv("VERIFY_DATABASE_URL", f"postgresql://verify:hunter2@127.0.0.1:{closed_tcp_port()}/verify?password=hunter2")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["database"][0] == "fail" and "127.0.0.1" in lines["database"][1]
    assert "hunter2" not in result.output


def test_a_missing_geoip_file_fails(env, tmp_path):
    env.setenv("VERIFY_GEOIP_ASN_DB", str(tmp_path / "GeoLite2-ASN.mmdb"))
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["geoip.asn"][0] == "fail" and "missing" in lines["geoip.asn"][1]
    assert lines["geoip.city"][0] == "ok"


def test_a_geoip_file_of_the_wrong_type_fails(env, geoip_files):
    env.setenv("VERIFY_GEOIP_CITY_DB", str(geoip_files["asn"]))
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["geoip.city"][0] == "fail" and "GeoLite2-ASN" in lines["geoip.city"][1]


def test_a_dead_resolver_fails(env):
    env.setenv("VERIFY_DNS_NAMESERVERS", f"127.0.0.1@{free_udp_port()}")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["dns"][0] == "fail" and CANARY in lines["dns"][1]


def test_a_resolver_that_denies_the_canary_fails(env, dns_server):
    env.setenv("VERIFY_DNS_CANARY", "not-in-the-zone.example-nx.com")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["dns"][0] == "fail" and "NXDOMAIN" in lines["dns"][1]


def test_an_unreachable_redis_fails_without_showing_its_password(env):
    env.setenv("VERIFY_RATE_LIMIT_STORAGE", f"redis://:hunter2@127.0.0.1:{closed_tcp_port()}/0")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["rate-limit-storage"][0] == "fail" and "127.0.0.1" in lines["rate-limit-storage"][1]
    assert "hunter2" not in result.output


def test_memory_storage_and_switched_off_checks_are_not_failures(env):
    env.delenv("VERIFY_RATE_LIMIT_STORAGE")
    env.setenv("VERIFY_MX_CHECK", "off")
    env.delenv("VERIFY_GEOIP_CITY_DB")
    env.delenv("VERIFY_GEOIP_ASN_DB")
    env.delenv("VERIFY_GEOIP_ANONYMOUS_DB")
    result, lines = doctor()
    assert result.exit_code == 0, result.output
    assert lines["dns"][0] == "ok" and "off" in lines["dns"][1]
    assert lines["geoip"][0] == "warn"
    assert lines["rate-limit-storage"][0] == "ok"


def test_a_bad_setting_fails_cleanly(env):
    env.setenv("VERIFY_DNS_TIMEOUT", "soon")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["settings"][0] == "fail" and "VERIFY_DNS_TIMEOUT" in lines["settings"][1]


@pytest.mark.parametrize(
    "url, shown",
    [
        ("sqlite:////var/lib/verify/verify.db", "sqlite:////var/lib/verify/verify.db"),
        ("postgresql://verify:hunter2@db.internal:5432/verify?sslmode=require&password=x", "postgresql://db.internal:5432/verify"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("memory://", "memory://"),
    ],
    ids=["sqlite", "postgres", "redis", "memory"],
)
def test_urls_are_shown_without_credentials(url, shown):
    from verify.doctor import shown_url

    assert shown_url(url) == shown


def test_an_unusable_database_url_fails_cleanly(env):
    env.setenv("VERIFY_DATABASE_URL", "nosuchdb://somewhere/verify")
    result, lines = doctor()
    assert result.exit_code == 1
    assert lines["database"][0] == "fail" and "unusable" in lines["database"][1]
