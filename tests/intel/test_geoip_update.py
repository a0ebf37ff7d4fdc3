"""`verify geoip update` against a local server speaking MaxMind's download protocol, with real
archives of real .mmdb files; every failure leaves the file in use untouched."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import maxminddb
import pytest
from click.testing import CliRunner

from tests.support import mmdb
from tests.support.contract import ContractClient
from tests.support.http_server import LocalHTTPServer, Route
from verify.app import create_app
from verify.cli import main
from verify.store.keys import create_api_key

ACCOUNT = ("123456", "licence-key-of-the-tests")


@pytest.fixture
def server():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


def download_path(edition: str, suffix: str) -> str:
    return f"/geoip/databases/{edition}/download?suffix={suffix}"


def publish(server: LocalHTTPServer, edition: str, archive: bytes, *, date: str = "20261201", sha256: bytes | None = None) -> None:
    """Serve an edition as MaxMind does: an authenticated URL that redirects to presigned storage
    on another host name (requests must drop the credentials there)."""
    storage = f"/storage/{edition}_{date}.tar.gz"
    server.routes[download_path(edition, "tar.gz")] = Route(auth=ACCOUNT, redirect=f"http://localhost:{server.base.rsplit(':', 1)[1]}{storage}")
    server.routes[storage] = Route(body=archive, refuse_auth=True, headers={"Content-Type": "application/gzip"})
    server.routes[download_path(edition, "tar.gz.sha256")] = Route(
        auth=ACCOUNT, body=sha256 if sha256 is not None else mmdb.sha256_line(archive, edition, date=date)
    )


def city_database(folder: Path, country: str = "GB", name: str = "GeoLite2-City") -> Path:
    return mmdb.write_mmdb(folder / f"src-{name}-{country}.mmdb", name, {**mmdb.CITY, "81.2.69.0/24": mmdb.country(country)})


def asn_database(folder: Path) -> Path:
    return mmdb.write_mmdb(folder / "src-asn.mmdb", "GeoLite2-ASN", mmdb.ASN)


@pytest.fixture
def target(tmp_path) -> Path:
    folder = tmp_path / "geoip"
    return folder


@pytest.fixture
def run(server, target, tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFY_DATABASE_URL", f"sqlite:///{tmp_path / 'verify.db'}")
    monkeypatch.setenv("VERIFY_MAXMIND_URL", server.base)
    monkeypatch.setenv("VERIFY_MAXMIND_ACCOUNT_ID", ACCOUNT[0])
    monkeypatch.setenv("VERIFY_MAXMIND_LICENSE_KEY", ACCOUNT[1])
    monkeypatch.setenv("VERIFY_GEOIP_CITY_DB", str(target / "GeoLite2-City.mmdb"))
    monkeypatch.setenv("VERIFY_GEOIP_ASN_DB", str(target / "GeoLite2-ASN.mmdb"))
    monkeypatch.setenv("VERIFY_DOWNLOAD_TIMEOUT", "1")

    def invoke(*args: str):
        return CliRunner().invoke(main, ["geoip", "update", *args], catch_exceptions=False)

    return invoke


def database_type(path: Path) -> str:
    with maxminddb.open_database(str(path)) as reader:
        return reader.metadata().database_type


def downloads(server: LocalHTTPServer) -> list[str]:
    return [seen.path for seen in server.seen if seen.path.startswith("/storage/")]


def test_update_installs_each_edition_at_its_role_path(run, server, target, tmp_path):
    city, asn = mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path)), mmdb.maxmind_archive("GeoLite2-ASN", asn_database(tmp_path))
    publish(server, "GeoLite2-City", city)
    publish(server, "GeoLite2-ASN", asn)
    result = run()
    assert result.exit_code == 0, result.output
    assert "GeoLite2-City: updated" in result.output and "GeoLite2-ASN: updated" in result.output
    assert database_type(target / "GeoLite2-City.mmdb") == "GeoLite2-City"
    assert database_type(target / "GeoLite2-ASN.mmdb") == "GeoLite2-ASN"
    # readable by a service running as another user, and nothing left behind
    assert stat.S_IMODE(os.stat(target / "GeoLite2-City.mmdb").st_mode) == 0o644
    assert sorted(p.name for p in target.iterdir()) == [
        "GeoLite2-ASN.mmdb", "GeoLite2-ASN.mmdb.sha256", "GeoLite2-City.mmdb", "GeoLite2-City.mmdb.sha256",
    ]
    assert (target / "GeoLite2-City.mmdb.sha256").read_bytes() == mmdb.sha256_line(city, "GeoLite2-City")
    # the credentials went to MaxMind's URL, never to the storage it redirects to
    assert all("authorization" in seen.headers for seen in server.seen if seen.path.startswith("/geoip/"))
    assert not any("authorization" in seen.headers for seen in server.seen if seen.path.startswith("/storage/"))


def test_nothing_is_downloaded_when_the_checksum_is_unchanged(run, server, target, tmp_path):
    publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path)))
    publish(server, "GeoLite2-ASN", mmdb.maxmind_archive("GeoLite2-ASN", asn_database(tmp_path)))
    assert run().exit_code == 0
    before = (target / "GeoLite2-City.mmdb").stat()
    server.seen.clear()
    again = run()
    assert again.exit_code == 0
    assert "GeoLite2-City: unchanged" in again.output and "GeoLite2-ASN: unchanged" in again.output
    assert downloads(server) == []
    assert (target / "GeoLite2-City.mmdb").stat().st_ino == before.st_ino

    # MaxMind publishes a new build: only that edition is fetched
    publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path, "IE"), date="20261208"), date="20261208")
    third = run()
    assert third.exit_code == 0
    assert "GeoLite2-City: updated" in third.output and "GeoLite2-ASN: unchanged" in third.output
    assert downloads(server) == ["/storage/GeoLite2-City_20261208.tar.gz"]
    with maxminddb.open_database(str(target / "GeoLite2-City.mmdb")) as reader:
        assert reader.get("81.2.69.10")["country"]["iso_code"] == "IE"

    # --force downloads even so; a file removed by hand is fetched again without it
    server.seen.clear()
    assert "GeoLite2-City: updated" in run("--force").stdout
    (target / "GeoLite2-ASN.mmdb").unlink()
    assert "GeoLite2-ASN: updated" in run().stdout


def garbage(length: int) -> bytes:
    return bytes((i * 7919 + 13) % 256 for i in range(length))


def failing_city(kind: str, server: LocalHTTPServer, tmp_path: Path) -> None:
    """Publish GeoLite2-City in one broken way."""
    good = mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path, "IE"), date="20261208")
    if kind == "wrong-licence-key":
        publish(server, "GeoLite2-City", good, date="20261208")
        for path in (download_path("GeoLite2-City", "tar.gz"), download_path("GeoLite2-City", "tar.gz.sha256")):
            server.routes[path].auth = ("123456", "another-key")
    elif kind == "unknown-edition":
        pass  # nothing published: 404
    elif kind == "server-error":
        server.routes[download_path("GeoLite2-City", "tar.gz.sha256")] = Route(status=503, body=b"Service Unavailable\n")
    elif kind == "storage-error":
        publish(server, "GeoLite2-City", good, date="20261208")
        server.routes["/storage/GeoLite2-City_20261208.tar.gz"].status = 500
    elif kind == "timeout":
        publish(server, "GeoLite2-City", good, date="20261208")
        server.routes["/storage/GeoLite2-City_20261208.tar.gz"].delay = 2.5
    elif kind == "bad-checksum":
        publish(server, "GeoLite2-City", good, date="20261208", sha256=mmdb.sha256_line(good + b"x", "GeoLite2-City"))
    elif kind == "checksum-garbage":
        publish(server, "GeoLite2-City", good, date="20261208", sha256=b"<html>Maintenance</html>\n")
    elif kind == "truncated-archive":
        publish(server, "GeoLite2-City", good, date="20261208")
        server.routes["/storage/GeoLite2-City_20261208.tar.gz"].cut_after = len(good) // 2
    elif kind == "truncated-but-checksummed":
        half = good[: len(good) // 2]
        publish(server, "GeoLite2-City", half, date="20261208")
    elif kind == "garbage-archive":
        publish(server, "GeoLite2-City", garbage(50_000), date="20261208")
    elif kind == "archive-without-mmdb":
        publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", None, date="20261208"), date="20261208")
    elif kind == "mmdb-that-is-not-one":
        publish(server, "GeoLite2-City", mmdb.maxmind_archive(
            "GeoLite2-City", None, date="20261208", extra={"GeoLite2-City_20261208/GeoLite2-City.mmdb": garbage(4096)},
        ), date="20261208")
    elif kind == "wrong-database-type":
        asn_file = mmdb.write_mmdb(tmp_path / "asn-as-city.mmdb", "GeoLite2-ASN", mmdb.ASN)
        publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", asn_file, date="20261208"), date="20261208")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("wrong-licence-key", "refused the credentials (HTTP 401)"),
        ("unknown-edition", "does not exist (HTTP 404)"),
        ("server-error", "failed on its side (HTTP 503)"),
        ("storage-error", "failed on its side (HTTP 500)"),
        ("timeout", "did not answer within 1 s"),
        ("bad-checksum", "a damaged or tampered download"),
        ("checksum-garbage", "did not answer with a SHA-256 line"),
        ("truncated-archive", "broke off"),
        ("truncated-but-checksummed", "not a readable tar.gz"),
        ("garbage-archive", "not a readable tar.gz"),
        ("archive-without-mmdb", "holds no .mmdb file"),
        ("mmdb-that-is-not-one", "not a MaxMind DB"),
        ("wrong-database-type", "holds a 'GeoLite2-ASN' database, which cannot serve as the city database"),
    ],
)
def test_every_failure_exits_non_zero_and_leaves_the_file_in_use(run, server, target, tmp_path, kind, message):
    publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path)))
    publish(server, "GeoLite2-ASN", mmdb.maxmind_archive("GeoLite2-ASN", asn_database(tmp_path)))
    assert run().exit_code == 0
    in_use = {path.name: path.read_bytes() for path in target.iterdir()}
    for path in list(server.routes):
        if "GeoLite2-City" in path:
            del server.routes[path]
    failing_city(kind, server, tmp_path)

    result = run()
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "GeoLite2-ASN: unchanged" in result.output  # the other edition is still checked
    assert {path.name: path.read_bytes() for path in target.iterdir()} == in_use  # no temporary file left either


def test_configuration_problems_are_named(run, monkeypatch):
    monkeypatch.delenv("VERIFY_MAXMIND_LICENSE_KEY")
    monkeypatch.setenv("VERIFY_GEOIP_EDITIONS", "GeoLite2-City GeoIP2-Anonymous-IP GeoLite2-Country Weather")
    result = run()
    assert result.exit_code == 1
    assert "VERIFY_MAXMIND_LICENSE_KEY" in result.output
    assert "GeoIP2-Anonymous-IP is a anonymous edition: set VERIFY_GEOIP_ANONYMOUS_DB" in result.output
    assert "GeoLite2-City and GeoLite2-Country would both be written to VERIFY_GEOIP_CITY_DB" in result.output
    assert "Weather is not a City, Country" in result.output


def test_anonymous_edition_is_written_to_its_role(run, server, target, tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFY_GEOIP_EDITIONS", "GeoIP2-Anonymous-IP")
    monkeypatch.setenv("VERIFY_GEOIP_ANONYMOUS_DB", str(target / "anonymous" / "GeoIP2-Anonymous-IP.mmdb"))
    source = mmdb.write_mmdb(tmp_path / "anon.mmdb", "GeoIP2-Anonymous-IP", mmdb.ANONYMOUS)
    publish(server, "GeoIP2-Anonymous-IP", mmdb.maxmind_archive("GeoIP2-Anonymous-IP", source))
    result = run()
    assert result.exit_code == 0, result.output
    assert database_type(target / "anonymous" / "GeoIP2-Anonymous-IP.mmdb") == "GeoIP2-Anonymous-IP"


def test_a_running_service_picks_up_the_updated_file(run, server, target, tmp_path, settings):
    publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path, "GB")))
    publish(server, "GeoLite2-ASN", mmdb.maxmind_archive("GeoLite2-ASN", asn_database(tmp_path)))
    assert run().exit_code == 0
    interval = 0.2
    app = create_app(settings.with_overrides(
        geoip_city_db=str(target / "GeoLite2-City.mmdb"), geoip_asn_db=str(target / "GeoLite2-ASN.mmdb"),
        geoip_reload_seconds=interval,
    ))
    app.test_client_class = ContractClient
    try:
        with app.extensions["verify"].database.transaction() as session:
            secret = create_api_key("backend", ["assess"], session=session)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"}

        def country() -> str:
            response = client.post("/v1/assessments", json={"email": "pat@gmail.com", "ip": "81.2.69.10"}, headers=headers)
            assert response.status_code == 201
            return response.get_json()["signals"]["ip"]["country"]

        assert country() == "GB"
        publish(server, "GeoLite2-City", mmdb.maxmind_archive("GeoLite2-City", city_database(tmp_path, "IE"), date="20261208"), date="20261208")
        assert run().exit_code == 0
        deadline = time.monotonic() + 5
        while country() != "IE" and time.monotonic() < deadline:
            time.sleep(interval / 2)
        assert country() == "IE"
        statuses = {row["role"]: row for row in client.get("/readyz").get_json()["checks"]["geoip"]}
        assert statuses["city"]["status"] == "ok" and statuses["city"]["database_type"] == "GeoLite2-City"
    finally:
        app.extensions["verify"].database.dispose()
