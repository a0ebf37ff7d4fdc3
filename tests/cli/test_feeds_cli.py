"""`verify feeds` and `verify worker` against a local HTTP server serving real-format samples, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from tests.support.contract import ContractClient
from tests.support.http_server import LocalHTTPServer, Route
from verify import cli
from verify.app import create_app
from verify.store.stamps import LISTS_STAMP
from verify.store.lists import get_list
from verify.store.stamps import read_stamps
from verify.store.feeds import Feed
from verify.store.models import AuditEvent, ListEntry

SAMPLES = Path(__file__).resolve().parents[1] / "support" / "feeds"
MAX_BYTES = 100_000


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def settings(settings):
    return settings.with_overrides(download_timeout=1.0, feed_max_bytes=MAX_BYTES)


@pytest.fixture
def server():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def entries_of(services, name: str) -> dict[str, ListEntry]:
    with services.database.transaction() as session:
        list_def = get_list(name, session=session)
        return {row.value: row for row in session.exec(select(ListEntry).where(ListEntry.list_id == list_def.id))}


def audit_events(services, action: str) -> list[AuditEvent]:
    with services.database.transaction() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def lists_stamp(services) -> int:
    with services.database.transaction() as session:
        return read_stamps(session=session).get(LISTS_STAMP, 0)


def add_feed(run, server, name: str, path: str, body: bytes, list_name: str, feed_format: str, **route: object) -> None:
    server.routes[path] = Route(body=body, **route)
    result = run("feeds", "add", "--name", name, "--url", server.url(path), "--list", list_name, "--format", feed_format)
    assert result.exit_code == 0, result.output


def test_tor_exits_fill_blocked_ips_with_their_source_and_deny_signups(run, server, services, client, assess_headers):
    add_feed(run, server, "tor-exits", "/tor/exit-addresses", sample("tor-exit-addresses.txt"), "blocked-ips", "tor")
    stamp = lists_stamp(services)
    result = run("feeds", "sync", "tor-exits")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "tor-exits -> blocked-ips: added 5, removed 0, total 5"
    stored = entries_of(services, "blocked-ips")
    assert set(stored) == {"162.247.74.201", "185.220.101.9", "192.42.116.16", "192.42.116.17", "2a0b:f4c2::20"}
    assert {row.source for row in stored.values()} == {"feed:tor-exits"}
    assert lists_stamp(services) > stamp  # every worker reloads its lists

    assert [event.target for event in audit_events(services, "feed.add")] == ["tor-exits"]
    sync = audit_events(services, "list.sync")
    assert len(sync) == 1 and sync[0].actor == "feeds" and sync[0].target == "blocked-ips"
    assert sync[0].detail | {"url": None} == {
        "list": "blocked-ips", "source": "feed:tor-exits", "feed": "tor-exits", "url": None, "skipped": 0,
        "added": 5, "removed": 0, "total": 5, "added_values": sorted(stored), "removed_values": [],
    }

    response = client.post("/v1/assessments", json={"email": "pat@gmail.com", "ip": "185.220.101.9"}, headers=assess_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["verdict"] == "deny" and "list.deny" in {reason["code"] for reason in body["reasons"]}

    listed = run("feeds", "list")
    assert listed.exit_code == 0
    assert listed.stdout.startswith("tor-exits\tblocked-ips\ttor\tevery 6h\t5 entries\t")
    assert " ok\t" + server.url("/tor/exit-addresses") in listed.output


def test_a_sync_replaces_only_its_own_source(run, server, services, client, admin_headers):
    # an admin's entries, one of them also in the feed, stay the admin's
    response = client.post("/v1/lists/blocked-ips/entries", json={"values": ["192.42.116.16", "203.0.113.50"], "reason": "seen in wave 9"}, headers=admin_headers)
    assert response.status_code == 200
    add_feed(run, server, "tor-bulk", "/torbulkexitlist", sample("tor-bulk-exit-list.txt"), "blocked-ips", "lines")
    assert run("feeds", "sync").exit_code == 0
    stored = entries_of(services, "blocked-ips")
    assert stored["192.42.116.16"].source == "key:alice-admin" and stored["192.42.116.16"].reason == "seen in wave 9"
    assert stored["185.220.101.9"].source == "feed:tor-bulk"
    assert len([row for row in stored.values() if row.source == "feed:tor-bulk"]) == 12

    # the next list drops two exits and adds one: only the feed's own entries move
    lines = sample("tor-bulk-exit-list.txt").decode().splitlines()
    server.routes["/torbulkexitlist"].body = ("\n".join(lines[2:]) + "\n45.141.215.88\n").encode()
    result = run("feeds", "sync", "tor-bulk")
    assert result.stdout.strip() == "tor-bulk -> blocked-ips: added 1, removed 2, total 11"
    stored = entries_of(services, "blocked-ips")
    assert "102.130.113.9" not in stored and "45.141.215.88" in stored
    assert stored["203.0.113.50"].source == "key:alice-admin" and "192.42.116.16" in stored

    # removing the feed takes its entries with it, and only them
    result = run("feeds", "remove", "tor-bulk")
    assert result.exit_code == 0 and "its 11 entries" in result.output
    assert set(entries_of(services, "blocked-ips")) == {"192.42.116.16", "203.0.113.50"}
    assert audit_events(services, "feed.remove")[0].detail == {"list": "blocked-ips", "entries_removed": 11, "kept_entries": False}
    assert run("feeds", "list").stdout.strip() == "no feeds; add one with `verify feeds add`"


def test_not_modified_is_nothing_to_do(run, server, services):
    add_feed(run, server, "aws", "/ip-ranges.json", sample("aws-ip-ranges.json"), "hosting-networks", "aws",
             etag='"8d3c6f0c1d"', last_modified="Sun, 30 Nov 2026 10:53:03 GMT")
    assert run("feeds", "sync", "aws").exit_code == 0
    server.seen.clear()
    result = run("feeds", "sync", "aws")
    assert result.exit_code == 0
    assert result.stdout.strip() == "aws -> hosting-networks: not modified since the last sync"
    assert server.seen[0].headers["if-none-match"] == '"8d3c6f0c1d"'
    assert server.seen[0].headers["if-modified-since"] == "Sun, 30 Nov 2026 10:53:03 GMT"
    assert len(audit_events(services, "list.sync")) == 1
    assert " unchanged\t" in run("feeds", "list").stdout
    # --force downloads anyway
    server.seen.clear()
    assert "added 0, removed 0, total 9" in run("feeds", "sync", "aws", "--force").stdout
    assert "if-none-match" not in server.seen[0].headers


def test_a_download_that_shrinks_the_list_too_much_is_refused(run, server, services):
    add_feed(run, server, "disposable-upstream", "/disposable_email_blocklist.conf", sample("disposable_email_blocklist.conf"),
             "blocked-domains", "lines", etag='"v1"')
    assert run("feeds", "sync").exit_code == 0
    assert len(entries_of(services, "blocked-domains")) == 10
    # a truncated file: 4 lines of 10
    route = server.routes["/disposable_email_blocklist.conf"]
    route.body, route.etag = b"0-mail.com\n027168.com\n0815.ru\n10minutemail.com\n", '"v2"'
    result = run("feeds", "sync")
    assert result.exit_code == 1
    assert "refused" in result.output and "from 10 to 4 entries" in result.output and "--force" in result.output
    assert len(entries_of(services, "blocked-domains")) == 10
    with services.database.transaction() as session:
        feed = session.exec(select(Feed)).one()
        assert feed.last_status == "refused" and feed.etag == '"v1"'  # the refused version is fetched again next time
    # half the entries is still accepted; --force accepts any shrink
    route.body, route.etag = b"\n".join(sample("disposable_email_blocklist.conf").splitlines()[:5]) + b"\n", '"v3"'
    assert run("feeds", "sync").exit_code == 0
    route.body, route.etag = b"zzrgg.com\n", '"v4"'
    assert run("feeds", "sync").exit_code == 1
    forced = run("feeds", "sync", "--force")
    assert forced.exit_code == 0 and "total 1" in forced.output
    assert set(entries_of(services, "blocked-domains")) == {"zzrgg.com"}


@pytest.mark.parametrize(
    "route, message",
    [
        (Route(status=500, body=b"Internal Server Error"), "failed on its side (HTTP 500)"),
        (Route(status=404, body=b"Not Found"), "does not exist (HTTP 404)"),
        (Route(body=sample("aws-ip-ranges.json"), delay=2.5), "did not answer within 1 s"),
        (Route(body=b"<html><body><h1>502 Bad Gateway</h1></body></html>"), "not a JSON document"),
        (Route(body=b'{"message": "rate limited"}'), "has no `prefixes` array"),
        (Route(body=sample("aws-ip-ranges.json"), cut_after=300), "broke off"),
        (Route(body=b'{"prefixes": [' + b'{"ip_prefix": "3.5.140.0/22"},' * 4000 + b'{}]}'), "more than the limit of 100000"),
        (Route(redirect="/elsewhere"), "does not exist (HTTP 404)"),
        (Route(redirect="/ip-ranges.json"), "redirects in a loop"),
    ],
    ids=["500", "404", "timeout", "html", "wrong-json", "truncated", "size-limit", "redirect-to-nothing", "redirect-loop"],
)
def test_a_failing_source_changes_nothing_and_exits_non_zero(run, server, services, route, message):
    add_feed(run, server, "aws", "/ip-ranges.json", sample("aws-ip-ranges.json"), "hosting-networks", "aws")
    assert run("feeds", "sync").exit_code == 0
    before = entries_of(services, "hosting-networks")
    server.routes["/ip-ranges.json"] = route
    result = run("feeds", "sync", "aws")
    assert result.exit_code == 1
    assert message in result.output
    assert entries_of(services, "hosting-networks").keys() == before.keys()
    listed = run("feeds", "list").stdout
    assert " failed\t" in listed and message in listed


def test_redirects_are_followed(run, server, services):
    server.routes["/cloud.json"] = Route(body=sample("google-cloud.json"))
    add_feed(run, server, "google-cloud", "/ipranges/cloud.json", b"", "hosting-networks", "google-cloud", redirect="/cloud.json")
    result = run("feeds", "sync")
    assert result.exit_code == 0, result.output
    assert set(entries_of(services, "hosting-networks")) == {
        "34.1.208.0/20", "2600:1900:8000::/44", "34.35.0.0/16", "35.186.0.0/17", "2600:1901:8100::/40",
    }


def test_adding_a_feed_checks_its_name_url_and_list(run, server):
    assert run("feeds", "add", "--name", "x", "--url", "http://127.0.0.1/x", "--list", "no-such-list").exit_code == 1
    assert run("feeds", "add", "--name", "Bad Name", "--url", "http://127.0.0.1/x", "--list", "blocked-ips").exit_code == 2
    assert run("feeds", "add", "--name", "x", "--url", "file:///etc/passwd", "--list", "blocked-ips").exit_code == 2
    assert run("feeds", "add", "--name", "x", "--url", "http://127.0.0.1/x", "--list", "blocked-ips", "--format", "xml").exit_code == 2
    assert run("feeds", "add", "--name", "x", "--url", "http://127.0.0.1/x", "--list", "blocked-ips", "--interval", "soon").exit_code == 2
    assert run("feeds", "add", "--name", "x", "--url", "http://127.0.0.1/x", "--list", "blocked-ips").exit_code == 0
    again = run("feeds", "add", "--name", "x", "--url", "http://127.0.0.1/y", "--list", "blocked-ips")
    assert again.exit_code == 1 and "exists already" in again.output
    assert run("feeds", "remove", "nothing").exit_code == 1
    assert run("feeds", "sync", "nothing").exit_code == 1


def test_remove_can_keep_the_entries(run, server, services):
    add_feed(run, server, "oracle", "/public_ip_ranges.json", sample("oracle-public-ip-ranges.json"), "hosting-networks", "oracle")
    run("feeds", "sync")
    assert run("feeds", "remove", "oracle", "--keep-entries").exit_code == 0
    assert {row.source for row in entries_of(services, "hosting-networks").values()} == {"feed:oracle"}


def test_the_worker_syncs_due_feeds_once_each(run, server, services):
    add_feed(run, server, "azure", "/ServiceTags_Public.json", sample("azure-service-tags.json"), "hosting-networks", "azure")
    add_feed(run, server, "oracle", "/public_ip_ranges.json", sample("oracle-public-ip-ranges.json"), "hosting-networks", "oracle")
    with services.database.transaction() as session:  # oracle was synced an hour ago; its 6 h have not passed
        oracle = session.exec(select(Feed).where(Feed.name == "oracle")).one()
        oracle.next_sync_at = datetime.now(timezone.utc) + timedelta(hours=5)
        session.add(oracle)
    result = run("worker", "--once")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "azure -> hosting-networks: added 10, removed 0, total 10"
    assert run("worker", "--once").stdout == ""  # nothing due any more
    with services.database.transaction() as session:
        azure = session.exec(select(Feed).where(Feed.name == "azure")).one()
        assert timedelta(hours=5, minutes=59) < azure.next_sync_at - azure.last_sync_at <= timedelta(hours=6)

    # a failure is retried sooner than the interval, and makes --once exit non-zero
    server.routes["/ServiceTags_Public.json"].status = 503
    with services.database.transaction() as session:
        azure = session.exec(select(Feed).where(Feed.name == "azure")).one()
        azure.next_sync_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        session.add(azure)
    failed = run("worker", "--once")
    assert failed.exit_code == 1 and "HTTP 503" in failed.output
    with services.database.transaction() as session:
        azure = session.exec(select(Feed).where(Feed.name == "azure")).one()
        assert azure.next_sync_at - azure.last_sync_at == timedelta(minutes=30)


def test_hosting_networks_score_ip_hosting_where_no_anonymous_database_answers(run, server, services, client, admin_headers, assess_headers, geoip_settings):
    lists = {row["name"]: row for row in client.get("/v1/lists", headers=admin_headers).get_json()["items"]}
    assert lists["hosting-networks"] | {"updated_at": None, "description": None} == {
        "name": "hosting-networks", "kind": "ip", "action": "signal", "builtin": True, "entry_count": 0,
        "updated_at": None, "description": None,
    }
    add_feed(run, server, "aws", "/ip-ranges.json", sample("aws-ip-ranges.json"), "hosting-networks", "aws")
    assert run("feeds", "sync").exit_code == 0

    response = client.post("/v1/assessments", json={"email": "pat@gmail.com", "ip": "3.5.141.7"}, headers=assess_headers)
    assert response.status_code == 201
    body = response.get_json()
    ip = body["signals"]["ip"]
    assert ip["is_hosting_provider"] is True and ip["hosting_source"] == "hosting-networks list" and ip["hosting_network"] == "3.5.140.0/22"
    assert ip["is_tor_exit_node"] == "unknown"  # the list says nothing about the other flags
    hosting = [reason for reason in body["reasons"] if reason["code"] == "ip.hosting"]
    assert hosting and "3.5.140.0/22" in hosting[0]["detail"] and "hosting-networks list" in hosting[0]["detail"]
    assert body["signals"]["lists"] == []  # a signal, not a list verdict
    assert body["verdict"] == "allow"  # scored by the policy: 30 points alone stay below a challenge

    # with an Anonymous IP database, its answer stands
    app = create_app(geoip_settings)
    app.test_client_class = ContractClient
    try:
        answered = app.test_client().post("/v1/assessments", json={"email": "pat@gmail.com", "ip": "3.5.141.7"}, headers=assess_headers)
        assert answered.status_code == 201
        ip = answered.get_json()["signals"]["ip"]
        assert ip["is_hosting_provider"] is False and "hosting_source" not in ip
    finally:
        app.extensions["verify"].database.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_worker_loops_until_sigterm(run, server, services, database_url):
    import os
    import signal
    import subprocess
    import sys
    import time

    add_feed(run, server, "tor-bulk", "/torbulkexitlist", sample("tor-bulk-exit-list.txt"), "blocked-ips", "lines")
    env = {**os.environ, "VERIFY_DATABASE_URL": database_url}
    worker = subprocess.Popen([sys.executable, "-m", "verify", "worker", "--poll", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(entries_of(services, "blocked-ips")) < 13 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(entries_of(services, "blocked-ips")) == 13
        worker.send_signal(signal.SIGTERM)
        stdout, _ = worker.communicate(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0
    assert stdout.decode().strip() == "tor-bulk -> blocked-ips: added 13, removed 0, total 13"
