"""The `verify` command: keys, db upgrade, assess."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.support.dns_server import CANARY
from verify.cli import main


@pytest.fixture
def run(database_url, dns_server, monkeypatch):
    monkeypatch.setenv("VERIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("VERIFY_DNS_NAMESERVERS", dns_server.nameserver)
    monkeypatch.setenv("VERIFY_DNS_CANARY", CANARY)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_db_upgrade_is_idempotent(run):
    assert run("db", "upgrade").exit_code == 0
    assert run("db", "upgrade").exit_code == 0


def test_keys_create_prints_the_secret_alone(run):
    result = run("keys", "create", "--name", "backend", "--scope", "assess", "--scope", "admin")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vk_")


def test_keys_list_shows_no_secret_and_revoke_marks_it(run):
    secret = run("keys", "create", "--name", "backend", "--scope", "assess").stdout.strip()
    listed = run("keys", "list").stdout
    assert "backend" in listed and "assess" in listed and secret not in listed and "active" in listed
    assert run("keys", "revoke", "backend").exit_code == 0
    assert "revoked" in run("keys", "list").stdout


def test_duplicate_key_name_fails_cleanly(run):
    run("keys", "create", "--name", "backend", "--scope", "assess")
    result = CliRunner().invoke(main, ["keys", "create", "--name", "backend", "--scope", "assess"])
    assert result.exit_code != 0 and "exists" in result.output


def test_revoking_an_unknown_key_fails_cleanly(run):
    result = CliRunner().invoke(main, ["keys", "revoke", "nobody"])
    assert result.exit_code != 0 and "nobody" in result.output


def test_scope_must_be_known(run):
    result = CliRunner().invoke(main, ["keys", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code == 2


def test_assess_prints_the_assessment(run):
    result = run("assess", "--email", "someone@mailinator.com", "--ip", "203.0.113.9")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["verdict"] == "deny"
    assert body["reasons"][0]["code"] == "email.disposable"


def test_assess_rejects_bad_input(run):
    result = CliRunner().invoke(main, ["assess", "--email", "a@b.co", "--ip", "not-an-ip"])
    assert result.exit_code != 0 and "ip" in result.output


def test_each_command_names_its_database_on_stderr_without_credentials(run, database_url):
    from verify.doctor import shown_url

    for args in (("db", "upgrade"), ("keys", "list"), ("lists", "export", "blocked-ips"), ("feeds", "list")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines().count(f"database: {shown_url(database_url)}") == 1, args
        assert "database:" not in result.stdout


def test_the_database_line_never_shows_a_user_or_password(run, database_url, monkeypatch):
    import sqlalchemy as sa

    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite URL carries no credentials")
    # The test server trusts local connections, so the password is carried but not needed.
    url = sa.engine.make_url(database_url).set(username="postgres", password="s3cret-pw")
    monkeypatch.setenv("VERIFY_DATABASE_URL", url.render_as_string(hide_password=False))
    result = run("keys", "list")
    assert result.exit_code == 0, result.output
    assert f"database: postgresql+psycopg://{url.host}:{url.port}/{url.database}" in result.stderr.splitlines()
    assert "s3cret-pw" not in result.output and "postgres@" not in result.output


def test_a_command_that_needs_no_database_names_none(run):
    result = run("geoip", "info")
    assert "database:" not in result.output
