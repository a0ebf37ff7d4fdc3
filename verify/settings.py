"""Settings, read once from VERIFY_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A VERIFY_* variable holds a value the service cannot use."""


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"on", "true", "1", "yes"}:
        return True
    if lowered in {"off", "false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be on or off, not {value!r}")


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    chosen = value.strip().lower()
    if chosen not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return chosen


SQLITE_SYNCHRONOUS = ("full", "normal")


def _number(value: str, name: str, kind: type) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {value!r}") from None
    if number <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return number


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'verify.db'}"
    geoip_city_db: str | None = None
    geoip_asn_db: str | None = None
    geoip_anonymous_db: str | None = None
    mx_check: bool = True
    dns_timeout: float = 1.0
    dns_nameservers: tuple[str, ...] = ()
    # A domain that must have MX records; while it does not resolve, the resolver's "no such
    # domain" is not believed. None (VERIFY_DNS_CANARY=off) switches the canary off.
    dns_canary: str | None = "gmail.com"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    rate_limit: str | None = None
    rate_limit_storage: str = "memory://"
    data_dir: Path = PROJECT_ROOT / "data"
    geoip_reload_seconds: float = 30.0
    # Outside knowledge kept fresh: `verify geoip update` and `verify feeds`.
    maxmind_account_id: str | None = None
    maxmind_license_key: str | None = None
    maxmind_url: str = "https://download.maxmind.com"
    geoip_editions: tuple[str, ...] = ("GeoLite2-City", "GeoLite2-ASN")
    download_timeout: float = 30.0
    feed_max_bytes: int = 64 * 1024 * 1024
    feed_max_shrink: float = 0.5
    # Signs the console's session cookies and CSRF tokens; the console is off without it, so
    # that several workers never sign with different per-process keys.
    secret_key: str | None = None
    console_idle_minutes: int = 30
    # Webhooks: seconds a receiver has to answer, and whether `verify serve` sends deliveries
    # itself (off when a separate `verify worker` does).
    webhook_timeout: float = 10.0
    serve_deliveries: bool = True
    # `verify serve` drains the revision jobs in a child of its own (off when `verify worker` does).
    serve_revisions: bool = True
    # SQLite's durability: `full` syncs the log on every commit, so an acknowledged verdict
    # survives a power cut; `normal` syncs only at checkpoints (faster; a power cut can lose
    # the last verdicts, a crashed process cannot).
    sqlite_synchronous: str = "full"
    # `verify serve` on SQLite commits the workers' assessments in one writer process, many
    # per commit (store/group_commit.py), so that `full` costs one sync per group, not per
    # assessment; `off` lets each worker commit its own.
    sqlite_group_commit: bool = True
    # Answer POST /v1/assessments with a Server-Timing header (per-stage milliseconds).
    server_timing: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Read the VERIFY_* variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        text = {
            "VERIFY_DATABASE_URL": "database_url",
            "VERIFY_GEOIP_CITY_DB": "geoip_city_db",
            "VERIFY_GEOIP_ASN_DB": "geoip_asn_db",
            "VERIFY_GEOIP_ANONYMOUS_DB": "geoip_anonymous_db",
            "VERIFY_HOST": "host",
            "VERIFY_RATE_LIMIT": "rate_limit",
            "VERIFY_RATE_LIMIT_STORAGE": "rate_limit_storage",
            "VERIFY_MAXMIND_ACCOUNT_ID": "maxmind_account_id",
            "VERIFY_MAXMIND_LICENSE_KEY": "maxmind_license_key",
            "VERIFY_MAXMIND_URL": "maxmind_url",
            "VERIFY_SECRET_KEY": "secret_key",
        }
        for variable, name in text.items():
            if env.get(variable):
                values[name] = env[variable]
        if env.get("VERIFY_MX_CHECK"):
            values["mx_check"] = _flag(env["VERIFY_MX_CHECK"], "VERIFY_MX_CHECK")
        if env.get("VERIFY_DNS_TIMEOUT"):
            values["dns_timeout"] = _number(env["VERIFY_DNS_TIMEOUT"], "VERIFY_DNS_TIMEOUT", float)
        if env.get("VERIFY_DNS_NAMESERVERS"):
            values["dns_nameservers"] = tuple(env["VERIFY_DNS_NAMESERVERS"].replace(",", " ").split())
        if env.get("VERIFY_DNS_CANARY"):
            canary = env["VERIFY_DNS_CANARY"].strip().rstrip(".").lower()
            values["dns_canary"] = None if canary == "off" else canary
        if env.get("VERIFY_PORT"):
            values["port"] = _number(env["VERIFY_PORT"], "VERIFY_PORT", int)
        if env.get("VERIFY_WORKERS"):
            values["workers"] = _number(env["VERIFY_WORKERS"], "VERIFY_WORKERS", int)
        if env.get("VERIFY_GEOIP_EDITIONS"):
            values["geoip_editions"] = tuple(env["VERIFY_GEOIP_EDITIONS"].replace(",", " ").split())
        if env.get("VERIFY_DOWNLOAD_TIMEOUT"):
            values["download_timeout"] = _number(env["VERIFY_DOWNLOAD_TIMEOUT"], "VERIFY_DOWNLOAD_TIMEOUT", float)
        if env.get("VERIFY_FEED_MAX_BYTES"):
            values["feed_max_bytes"] = _number(env["VERIFY_FEED_MAX_BYTES"], "VERIFY_FEED_MAX_BYTES", int)
        if env.get("VERIFY_FEED_MAX_SHRINK"):
            values["feed_max_shrink"] = _number(env["VERIFY_FEED_MAX_SHRINK"], "VERIFY_FEED_MAX_SHRINK", float)
            if values["feed_max_shrink"] > 1:
                raise SettingsError("VERIFY_FEED_MAX_SHRINK is a fraction: greater than 0, at most 1")
        if env.get("VERIFY_CONSOLE_IDLE_MINUTES"):
            values["console_idle_minutes"] = _number(env["VERIFY_CONSOLE_IDLE_MINUTES"], "VERIFY_CONSOLE_IDLE_MINUTES", int)
        if env.get("VERIFY_WEBHOOK_TIMEOUT"):
            values["webhook_timeout"] = _number(env["VERIFY_WEBHOOK_TIMEOUT"], "VERIFY_WEBHOOK_TIMEOUT", float)
        if env.get("VERIFY_SERVE_DELIVERIES"):
            values["serve_deliveries"] = _flag(env["VERIFY_SERVE_DELIVERIES"], "VERIFY_SERVE_DELIVERIES")
        if env.get("VERIFY_SERVE_REVISIONS"):
            values["serve_revisions"] = _flag(env["VERIFY_SERVE_REVISIONS"], "VERIFY_SERVE_REVISIONS")
        if env.get("VERIFY_SQLITE_SYNCHRONOUS"):
            values["sqlite_synchronous"] = _choice(env["VERIFY_SQLITE_SYNCHRONOUS"], "VERIFY_SQLITE_SYNCHRONOUS", SQLITE_SYNCHRONOUS)
        if env.get("VERIFY_SQLITE_GROUP_COMMIT"):
            values["sqlite_group_commit"] = _flag(env["VERIFY_SQLITE_GROUP_COMMIT"], "VERIFY_SQLITE_GROUP_COMMIT")
        if env.get("VERIFY_SERVER_TIMING"):
            values["server_timing"] = _flag(env["VERIFY_SERVER_TIMING"], "VERIFY_SERVER_TIMING")
        if env.get("VERIFY_DATA_DIR"):
            values["data_dir"] = Path(env["VERIFY_DATA_DIR"])
        return cls(**values)

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with some fields changed (tests and CLI options use this)."""
        return replace(self, **changes)
