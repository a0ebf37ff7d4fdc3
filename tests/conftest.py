"""Shared fixtures: a real DNS server on loopback, a fresh database per test (SQLite, and
PostgreSQL when VERIFY_TEST_POSTGRES_URL is set), the app, API keys, a contract-checking client."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
import sqlalchemy as sa

from tests.support.contract import contract_app
from tests.support.dns_server import CANARY, LoopbackDNS
from verify.app import default_policy
from verify.intel.providers import disposable_seed
from verify.settings import Settings
from verify.store.keys import create_api_key
from verify.store.bootstrap import bootstrap
from verify.store.database import Database, normalise_url

POSTGRES_URL = os.environ.get("VERIFY_TEST_POSTGRES_URL")

# In CI the generated examples are fixed, so a run is repeatable and a red build means a
# change broke something; on a developer's machine every run explores new examples.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


POSTGRES_SKIP_REASON = (
    "PostgreSQL copy: set VERIFY_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to run it"
)


def pytest_collection_modifyitems(config, items):
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason=POSTGRES_SKIP_REASON)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    """Why tests were skipped, one line per reason with its count, at the end of every run."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if report.skipped]
    if not skipped:
        return
    counts: dict[str, int] = {}
    for report in skipped:
        counts[skip_reason(report)] = counts.get(skip_reason(report), 0) + 1
    terminalreporter.section("skipped, by reason")
    for reason, count in sorted(counts.items(), key=lambda item: -item[1]):
        terminalreporter.line(f"{count:6d}  {reason}")


def pytest_sessionfinish(session):
    """Drop the PostgreSQL databases this process made (each run names its own)."""
    if not _made_databases:
        return
    for url in _made_databases:
        drop_postgres_database(url)
    _made_databases.clear()


def prepare(database: Database, settings: Settings) -> None:
    database.upgrade()
    with database.transaction() as session:
        bootstrap(session=session, default_policy=default_policy(settings), disposable=disposable_seed())


@pytest.fixture(scope="session")
def dns_server():
    server = LoopbackDNS().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated and seeded SQLite file, copied for each test (seeding takes a while)."""
    path = tmp_path_factory.mktemp("template") / "verify.db"
    database = Database(f"sqlite:///{path}")
    prepare(database, Settings())
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    return path


# Each run (and each xdist worker in it) names its own databases, so that runs side by side on
# one server never share one; the process that made them drops them when its session ends.
RUN_ID = uuid.uuid4().hex[:10]
_made_databases: list[str] = []


def postgres_database_url(worker: str) -> str:
    """A database of this run's own for each xdist worker, created on first use."""
    base = sa.engine.make_url(normalise_url(POSTGRES_URL))
    name = f"verify_test_{RUN_ID}_{worker}"
    url = base.set(database=name).render_as_string(hide_password=False)
    if url not in _made_databases:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        _made_databases.append(url)
    return url


def drop_postgres_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database=sa.engine.make_url(normalise_url(POSTGRES_URL)).database), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


_prepared_templates: set[str] = set()


def postgres_template_url(worker: str) -> str:
    """This worker's migrated and seeded database, made once: each test gets a copy of it."""
    url = postgres_database_url(f"{worker}_template")
    if url not in _prepared_templates:
        reset_postgres(url)
        database = Database(url)
        prepare(database, Settings())
        database.dispose()
        _prepared_templates.add(url)
    return url


def fresh_postgres_copy(worker: str) -> str:
    """A new database copied from the template: far cheaper than migrating and seeding again."""
    template = sa.engine.make_url(postgres_template_url(worker)).database
    base = sa.engine.make_url(normalise_url(POSTGRES_URL))
    name = f"verify_test_{RUN_ID}_{worker}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    if url not in _made_databases:
        _made_databases.append(url)
    return url


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, sqlite_template, worker_id) -> str:
    """A fresh, migrated, seeded database for this test, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "verify.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    return fresh_postgres_copy(worker_id)


@pytest.fixture
def settings(database_url, dns_server) -> Settings:
    return Settings(database_url=database_url, dns_nameservers=(dns_server.nameserver,), dns_timeout=0.5, dns_canary=CANARY)


@pytest.fixture
def app(settings):
    with contract_app(settings) as app:
        yield app


@pytest.fixture
def services(app):
    return app.extensions["verify"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def keys(services) -> dict[str, str]:
    """Secrets of an assess key, an admin key, and a key with both scopes."""
    with services.database.transaction() as session:
        return {
            "assess": create_api_key("backend", ["assess"], session=session),
            "admin": create_api_key("alice-admin", ["admin"], session=session),
            "both": create_api_key("ops", ["assess", "admin"], session=session),
        }


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def assess_headers(keys) -> dict[str, str]:
    return bearer(keys["assess"])


@pytest.fixture
def admin_headers(keys) -> dict[str, str]:
    return bearer(keys["admin"])


# -- GeoIP ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def geoip_files(tmp_path_factory) -> dict[str, Path]:
    """City, ASN and Anonymous IP databases (tests/mmdb.py says which networks hold what)."""
    from tests.support import mmdb

    folder = tmp_path_factory.mktemp("geoip")
    return {
        "city": mmdb.write_mmdb(folder / "GeoIP2-City.mmdb", "GeoIP2-City", mmdb.CITY),
        "asn": mmdb.write_mmdb(folder / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", mmdb.ASN),
        "anonymous": mmdb.write_mmdb(folder / "GeoIP2-Anonymous-IP.mmdb", "GeoIP2-Anonymous-IP", mmdb.ANONYMOUS),
    }


@pytest.fixture
def geoip_settings(settings, geoip_files) -> Settings:
    """The test settings with all three GeoIP databases configured."""
    return settings.with_overrides(
        geoip_city_db=str(geoip_files["city"]),
        geoip_asn_db=str(geoip_files["asn"]),
        geoip_anonymous_db=str(geoip_files["anonymous"]),
    )
