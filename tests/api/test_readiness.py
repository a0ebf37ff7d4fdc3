"""GET /readyz: ready means a write can be made, and file-system paths are for admins only."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from verify.app import create_app
from verify.store.database import normalise_url
from tests.support.contract import ContractClient


@pytest.fixture
def geo_client(geoip_settings):
    app = create_app(geoip_settings)
    app.test_client_class = ContractClient
    yield app.test_client()
    app.extensions["verify"].database.dispose()


def test_ready_when_the_database_takes_writes(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"]["status"] == "ok"


def test_no_paths_without_a_key(geo_client, geoip_files, keys):
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Bearer {keys['assess']}"}):
        response = geo_client.get("/readyz", headers=headers)
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert str(geoip_files["city"].parent) not in text
        assert all("path" not in item for item in response.get_json()["checks"]["geoip"])
        assert {item["role"]: item["status"] for item in response.get_json()["checks"]["geoip"]} == {"city": "ok", "asn": "ok", "anonymous": "ok"}


def test_an_admin_key_shows_the_paths(geo_client, geoip_files, keys):
    body = geo_client.get("/readyz", headers={"Authorization": f"Bearer {keys['admin']}"}).get_json()
    assert {item["role"]: item["path"] for item in body["checks"]["geoip"]}["city"] == str(geoip_files["city"])


@contextmanager
def read_only_sqlite(path):
    """The file made read-only; as root (whom chmod does not stop) also immutable."""
    path.chmod(0o444)
    immutable = False
    try:
        if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0":
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("running as root without chattr: the file cannot be made read-only")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


@contextmanager
def read_only_postgres(url):
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = sa.engine.make_url(url).database
    with engine.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    try:
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        engine.dispose()


def assert_not_ready(client) -> None:
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"]["status"] == "unavailable"


def test_a_read_only_database_is_not_ready(client, services, database_url):
    services.database.dispose()  # connections opened before the change keep their old mode
    if services.database.dialect == "sqlite":
        context = read_only_sqlite(Path(sa.engine.make_url(database_url).database))
    else:
        context = read_only_postgres(database_url)
    with context:
        services.database.dispose()
        assert_not_ready(client)
    services.database.dispose()
    assert client.get("/readyz").status_code == 200


def test_a_locked_database_is_not_ready(client, services, database_url):
    if services.database.dialect == "sqlite":
        holder = sqlite3.connect(sa.engine.make_url(database_url).database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        engine = sa.create_engine(normalise_url(database_url))
        holder = engine.connect()
        holder.execute(sa.text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
    try:
        assert_not_ready(client)
    finally:
        holder.rollback()
        holder.close()
    assert client.get("/readyz").status_code == 200
