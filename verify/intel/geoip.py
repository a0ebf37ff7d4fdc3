"""MaxMind-format databases (City or Country, ASN, Anonymous IP): lookups that follow a file
replaced on disk, and what each record says as plain signal values.

Each role is one small reader behind the `GeoDatabase` interface: `MaxMindDatabase` for a
configured file, `NullDatabase` when none is configured. A value the service could not know
(no database, a missing or corrupt file, an address family the file does not cover) is
`"unknown"`, never `None` or `False`: an unanswered question must not read as a clean answer.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import maxminddb

from verify import metrics
from verify.settings import Settings

UNKNOWN = "unknown"
STALE_AFTER = timedelta(days=30)
ROLES = ("city", "asn", "anonymous")

# The metadata database_type each role can read. A file of another kind would answer
# "not found" for every address, and "not found" in an ASN or anonymity database reads as clean.
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "city": ("City", "Country", "Enterprise"),
    "asn": ("ASN", "ISP"),
    "anonymous": ("Anonymous",),
}

ANONYMITY_FLAGS = (
    "is_anonymous",
    "is_anonymous_vpn",
    "is_hosting_provider",
    "is_public_proxy",
    "is_residential_proxy",
    "is_tor_exit_node",
)
# Fields only GeoIP Anonymous Plus has; shown when the record carries them.
ANONYMOUS_PLUS_FIELDS = ("anonymizer_confidence", "network_last_seen", "provider_name")
# Enterprise (and Connection-Type / ISP style) traits worth showing beside the location.
LOCATION_TRAITS = ("connection_type", "user_type")


@dataclass(frozen=True)
class Lookup:
    """One database's answer: `known` is False when the database could not answer at all."""

    known: bool
    record: Mapping[str, Any] | None = None


UNAVAILABLE = Lookup(known=False)


@dataclass(frozen=True)
class DatabaseStatus:
    """How one configured database file is doing, as /readyz and `verify geoip info` show it."""

    role: str
    path: str
    status: str  # ok | missing | corrupt | stale
    database_type: str | None = None
    build_date: datetime | None = None
    age_days: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        build = self.build_date.isoformat().replace("+00:00", "Z") if self.build_date else None
        return {
            "role": self.role,
            "path": self.path,
            "status": self.status,
            "database_type": self.database_type,
            "build_date": build,
            "age_days": self.age_days,
            "error": self.error,
        }


class GeoDatabase(Protocol):
    def lookup(self, address: str) -> Lookup:
        """The record for an address (None when the file has none), or UNAVAILABLE."""

    def status(self, *, now: datetime) -> DatabaseStatus | None:
        """The file's state, or None when no file is configured."""


class NullDatabase:
    """No file configured for this role: nothing is known and there is nothing to report."""

    def lookup(self, address: str) -> Lookup:
        return UNAVAILABLE

    def status(self, *, now: datetime) -> DatabaseStatus | None:
        return None


Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Loaded:
    """One opened version of the file; swapped whole, so a lookup never sees half of a reload."""

    signature: Signature | None
    reader: Any | None = None
    database_type: str | None = None
    build_epoch: int | None = None
    problem: str | None = None  # missing | corrupt
    error: str | None = None


def _signature(path: str) -> Signature | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


class MaxMindDatabase:
    """A MaxMind DB file, reopened when it is replaced on disk.

    geoipupdate writes a temporary file and renames it over the old one. At most every
    `reload_seconds` one lookup compares the path's inode, mtime and size with the open
    version; when they differ it opens the new file and swaps it in. Lookups running
    meanwhile keep the old reader (its mapping stays valid after the rename) and the old
    reader is closed by the garbage collector once the last of them lets go. A replacement
    that cannot be opened leaves the previous version serving, and the status says so.
    """

    def __init__(
        self,
        role: str,
        path: str,
        *,
        reload_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown GeoIP role {role!r}")
        self.role = role
        self.path = path
        self.reload_seconds = reload_seconds
        self._clock = clock
        self._reload_lock = threading.Lock()
        self._loaded = self._open(_signature(path), previous=None)
        self._next_check = clock() + reload_seconds

    def _open(self, signature: Signature | None, *, previous: _Loaded | None) -> _Loaded:
        if signature is None:
            problem, error = "missing", f"no file at {self.path}"
        else:
            try:
                reader = maxminddb.open_database(self.path, maxminddb.MODE_AUTO)
                metadata = reader.metadata()
                database_type = str(metadata.database_type)
                if not any(kind in database_type for kind in ACCEPTED_TYPES[self.role]):
                    reader.close()
                    wanted = " or ".join(ACCEPTED_TYPES[self.role])
                    raise ValueError(f"database_type {database_type!r} is not a {wanted} database")
                metrics.set_geoip_build(self.role, int(metadata.build_epoch))
                return _Loaded(signature, reader, database_type, int(metadata.build_epoch))
            except FileNotFoundError:
                problem, error = "missing", f"no file at {self.path}"
            except (OSError, ValueError, RuntimeError) as failure:
                # maxminddb raises InvalidDatabaseError (a RuntimeError) for a file that is not
                # a MaxMind DB, and ValueError or OSError for some truncated ones.
                problem, error = "corrupt", str(failure) or type(failure).__name__
        if previous is not None and previous.reader is not None:
            built = datetime.fromtimestamp(previous.build_epoch or 0, timezone.utc).date()
            return _Loaded(
                signature,
                previous.reader,
                previous.database_type,
                previous.build_epoch,
                problem,
                f"{error}; still serving the copy built {built.isoformat()}",
            )
        return _Loaded(signature, problem=problem, error=error)

    def refresh(self) -> None:
        """Reopen the file if it changed on disk and the reload interval has passed."""
        now = self._clock()
        if now < self._next_check or not self._reload_lock.acquire(blocking=False):
            return
        try:
            self._next_check = now + self.reload_seconds
            signature = _signature(self.path)
            if signature != self._loaded.signature:
                self._loaded = self._open(signature, previous=self._loaded)
        finally:
            self._reload_lock.release()

    def lookup(self, address: str) -> Lookup:
        self.refresh()
        loaded = self._loaded
        if loaded.reader is None:
            return UNAVAILABLE
        try:
            return Lookup(known=True, record=loaded.reader.get(address))
        except ValueError:
            # An IPv6 address asked of an IPv4-only file: the file cannot say.
            return UNAVAILABLE
        except (RuntimeError, OSError):
            return UNAVAILABLE

    def status(self, *, now: datetime) -> DatabaseStatus:
        self.refresh()
        loaded = self._loaded
        build_date = age_days = None
        if loaded.build_epoch is not None:
            build_date = datetime.fromtimestamp(loaded.build_epoch, timezone.utc)
            age_days = round((now - build_date).total_seconds() / 86400, 1)
        state = loaded.problem or ("stale" if build_date and now - build_date > STALE_AFTER else "ok")
        return DatabaseStatus(
            role=self.role,
            path=self.path,
            status=state,
            database_type=loaded.database_type,
            build_date=build_date,
            age_days=age_days,
            error=loaded.error,
        )


# -- records as signal values -------------------------------------------------------------

def _iso_code(record: Mapping[str, Any], key: str) -> str | None:
    place = record.get(key)
    code = place.get("iso_code") if isinstance(place, Mapping) else None
    return code if isinstance(code, str) else None


def _traits(record: Mapping[str, Any] | None) -> Mapping[str, Any]:
    traits = record.get("traits") if record else None
    return traits if isinstance(traits, Mapping) else {}


def location_values(lookup: Lookup) -> dict[str, Any]:
    """Country and registered country (ISO alpha-2), plus connection and user type when known."""
    if not lookup.known:
        return {"country": UNKNOWN, "registered_country": UNKNOWN}
    record = lookup.record or {}
    values: dict[str, Any] = {
        "country": _iso_code(record, "country"),
        "registered_country": _iso_code(record, "registered_country"),
    }
    traits = _traits(lookup.record)
    for name in LOCATION_TRAITS:
        if isinstance(traits.get(name), str):
            values[name] = traits[name]
    return values


def owner_values(lookup: Lookup, *, fallback: Lookup = UNAVAILABLE) -> dict[str, Any]:
    """The autonomous system; from the ASN file, else from Enterprise traits when they carry it."""
    if lookup.known:
        record = lookup.record or {}
    elif fallback.known and isinstance(_traits(fallback.record).get("autonomous_system_number"), int):
        record = _traits(fallback.record)
    else:
        return {"asn": UNKNOWN, "as_org": UNKNOWN}
    asn = record.get("autonomous_system_number")
    org = record.get("autonomous_system_organization")
    return {
        "asn": asn if isinstance(asn, int) and not isinstance(asn, bool) else None,
        "as_org": org if isinstance(org, str) else None,
    }


def anonymity_values(lookup: Lookup) -> dict[str, Any]:
    """Every anonymity flag; an address absent from the file is none of them."""
    if not lookup.known:
        return {flag: UNKNOWN for flag in ANONYMITY_FLAGS}
    record = lookup.record or {}
    values: dict[str, Any] = {flag: record.get(flag) is True for flag in ANONYMITY_FLAGS}
    for name in ANONYMOUS_PLUS_FIELDS:
        if name in record:
            values[name] = record[name]
    return values


class GeoIP:
    """The three databases together: what they say about one address."""

    def __init__(self, *, city: GeoDatabase, asn: GeoDatabase, anonymous: GeoDatabase) -> None:
        self.city = city
        self.asn = asn
        self.anonymous = anonymous

    @classmethod
    def from_settings(cls, settings: Settings) -> "GeoIP":
        def database(role: str, path: str | None) -> GeoDatabase:
            if not path:
                return NullDatabase()
            return MaxMindDatabase(role, path, reload_seconds=settings.geoip_reload_seconds)

        return cls(
            city=database("city", settings.geoip_city_db),
            asn=database("asn", settings.geoip_asn_db),
            anonymous=database("anonymous", settings.geoip_anonymous_db),
        )

    @classmethod
    def unconfigured(cls) -> "GeoIP":
        return cls(city=NullDatabase(), asn=NullDatabase(), anonymous=NullDatabase())

    def describe(self, address: str) -> dict[str, Any]:
        """Location, autonomous system and anonymity of an IPv4 or IPv6 address."""
        ip = ipaddress.ip_address(address)
        # ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket.
        mapped = getattr(ip, "ipv4_mapped", None)
        target = str(mapped or ip)
        place = self.city.lookup(target)
        return {
            **location_values(place),
            **owner_values(self.asn.lookup(target), fallback=place),
            **anonymity_values(self.anonymous.lookup(target)),
        }

    def statuses(self, *, now: datetime) -> list[DatabaseStatus]:
        """The state of each configured database."""
        found = (database.status(now=now) for database in (self.city, self.asn, self.anonymous))
        return [status for status in found if status is not None]
