"""`verify doctor`: checks of the whole configuration, each a line of ok, warn or fail.

A check reads what the service would use (the same settings, resolver, readers and storage)
and never changes anything: no migration, no file created, no key written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from limits.storage import storage_from_string

from verify.intel.dns import canary_problem, make_resolver
from verify.intel.geoip import GeoIP
from verify.settings import Settings
from verify.store.database import MIGRATIONS, create_db_engine, normalise_url

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    """The result of one check, as `verify doctor` prints it."""

    check: str
    status: str  # ok | warn | fail
    detail: str

    def line(self) -> str:
        return f"{self.status:<5}{self.check:<19}{self.detail}"


def shown_url(url: str) -> str:
    """A URL without user, password or query (where libpq and Redis URLs may carry a password)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def check_database(settings: Settings) -> Iterator[Finding]:
    """The database answers, and its schema is at the newest migration."""
    url = normalise_url(settings.database_url)
    shown = shown_url(settings.database_url)
    try:
        parsed = sa.engine.make_url(url)
        sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if sqlite_file not in (None, "", ":memory:") and not Path(sqlite_file).is_file():
            # Connecting would create an empty file where a typo points.
            yield Finding("database", FAIL, f"{shown}: the file does not exist (verify db upgrade creates it)")
            return
        engine = create_db_engine(url)
    except sa.exc.ArgumentError as error:  # not a URL, or a driver that is not installed
        yield Finding("database", FAIL, f"{shown}: unusable URL ({error})")
        return
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        yield Finding("database", FAIL, f"{shown}: unreachable ({type(error).__name__}: {reason})")
        return
    finally:
        engine.dispose()
    yield Finding("database", OK, f"{shown}: reachable")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    if current == heads:
        yield Finding("migrations", OK, f"at head {', '.join(sorted(heads))}")
    elif not current:
        yield Finding("migrations", FAIL, "no migration applied: run verify db upgrade")
    else:
        yield Finding("migrations", FAIL, f"at {', '.join(sorted(current))}, head is {', '.join(sorted(heads))}: run verify db upgrade")


def check_geoip(settings: Settings, *, now: datetime) -> Iterator[Finding]:
    """Each configured file opens, holds the database type of its role, and is recent."""
    statuses = GeoIP.from_settings(settings).statuses(now=now)
    if not statuses:
        yield Finding("geoip", WARN, "no database configured (VERIFY_GEOIP_CITY_DB, _ASN_DB, _ANONYMOUS_DB): IP signals read unknown")
        return
    for status in statuses:
        check = f"geoip.{status.role}"
        if status.status in ("missing", "corrupt"):
            yield Finding(check, FAIL, f"{status.path}: {status.status}" + (f" ({status.error})" if status.error else ""))
            continue
        described = f"{status.path}: {status.database_type}, built {status.build_date:%Y-%m-%d}, {status.age_days:g} days old"
        if status.status == "stale":
            yield Finding(check, WARN, f"{described}: run geoipupdate (or verify geoip update)")
        else:
            yield Finding(check, OK, described)


def check_dns(settings: Settings) -> Iterator[Finding]:
    """The canary has MX records through the configured nameservers."""
    if not settings.mx_check:
        yield Finding("dns", OK, "MX check off (VERIFY_MX_CHECK)")
        return
    through = ", ".join(settings.dns_nameservers) or "the system resolver"
    if settings.dns_canary is None:
        yield Finding("dns", WARN, f"no canary (VERIFY_DNS_CANARY=off): a resolver that denies every domain would go unnoticed ({through})")
        return
    try:
        resolver = make_resolver(settings.dns_nameservers)
    except ValueError as error:
        yield Finding("dns", FAIL, f"VERIFY_DNS_NAMESERVERS: {error}")
        return
    problem = canary_problem(resolver, settings.dns_canary, timeout=settings.dns_timeout)
    if problem:
        yield Finding("dns", FAIL, f"through {through}: {problem}")
    else:
        yield Finding("dns", OK, f"canary {settings.dns_canary} has MX records through {through}")


def check_rate_limit_storage(settings: Settings) -> Iterator[Finding]:
    """The shared storage of rate-limit counters (Redis) answers."""
    url = settings.rate_limit_storage
    shown = shown_url(url)
    if url.startswith("memory://"):
        yield Finding("rate-limit-storage", OK, f"{shown} (counts are per process)")
        return
    try:
        reachable = storage_from_string(url).check()
    except Exception as error:  # limits raises what the storage's client raises, of many kinds
        yield Finding("rate-limit-storage", FAIL, f"{shown}: unusable ({type(error).__name__})")
        return
    if reachable:
        yield Finding("rate-limit-storage", OK, f"{shown}: reachable")
    else:
        yield Finding("rate-limit-storage", FAIL, f"{shown}: unreachable")


def diagnose(settings: Settings, *, now: datetime) -> list[Finding]:
    """Every check, in the order an operator would fix them."""
    return [
        *check_database(settings),
        *check_geoip(settings, now=now),
        *check_dns(settings),
        *check_rate_limit_storage(settings),
    ]
