"""Build real MaxMind DB files for tests, in MaxMind's record layouts and metadata."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet


class _Writer(MMDBWriter):
    """mmdb-writer stamps the build time as now; tests need older builds too."""

    def __init__(self, *, build_epoch: int, **options: Any) -> None:
        super().__init__(**options)
        self.build_epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        return {**super()._build_meta(), "build_epoch": self.build_epoch}


def write_mmdb(
    path: Path,
    database_type: str,
    records: dict[str, dict[str, Any]],
    *,
    built_days_ago: float = 1,
    ip_version: int = 6,
) -> Path:
    """Write `records` ({cidr: record}) as a MaxMind DB with the given database_type."""
    writer = _Writer(
        build_epoch=int(time.time() - built_days_ago * 86400),
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description=f"{database_type} built for the verify tests",
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def replace_file(source: Path, target: Path) -> None:
    """Put `source` at `target` the way geoipupdate does: copy beside it, then rename over."""
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(source.read_bytes())
    os.replace(temporary, target)


def country(code: str | None, registered: str | None = None, **traits: Any) -> dict[str, Any]:
    """A GeoIP2 City/Country record."""
    record: dict[str, Any] = {}
    if code:
        record["country"] = {"iso_code": code, "names": {"en": code}}
    if registered or code:
        record["registered_country"] = {"iso_code": registered or code}
    if traits:
        record["traits"] = traits
    return record


def asn(number: int, organisation: str) -> dict[str, Any]:
    """A GeoLite2-ASN record."""
    return {"autonomous_system_number": number, "autonomous_system_organization": organisation}


def anonymous(**flags: bool) -> dict[str, Any]:
    """A GeoIP2-Anonymous-IP record: is_anonymous plus the given is_* flags."""
    return {"is_anonymous": True, **{f"is_{name}": value for name, value in flags.items()}}


# The networks the API tests use, one per situation; all in global unicast space.
CITY = {
    "81.2.69.0/24": country("GB"),
    "89.160.20.0/24": country("SE"),
    "216.160.83.0/24": country("US"),
    "45.55.0.0/16": country("US"),
    "185.220.101.0/24": country("DE"),
    "146.70.0.0/16": country("CH", "PA"),
    "5.188.0.0/16": country("RU"),
    "2a02:1000::/32": country("DE"),
    "149.101.100.0/24": country("US", "US", connection_type="Cellular", user_type="cellular"),
}
ASN = {
    "81.2.69.0/24": asn(20712, "Andrews & Arnold Ltd"),
    "45.55.0.0/16": asn(14061, "DigitalOcean, LLC"),
    "185.220.101.0/24": asn(60729, "Zwiebelfreunde e.V."),
    "146.70.0.0/16": asn(9009, "M247 Europe SRL"),
    "5.188.0.0/16": asn(49505, "Selectel"),
    "2a02:1000::/32": asn(3320, "Deutsche Telekom AG"),
}
ANONYMOUS = {
    "45.55.0.0/16": anonymous(hosting_provider=True),
    "185.220.101.0/24": anonymous(tor_exit_node=True),
    "146.70.0.0/16": anonymous(anonymous_vpn=True),
    "5.188.0.0/16": anonymous(public_proxy=True),
    "2a02:1000:dead::/48": anonymous(residential_proxy=True),
}


def maxmind_archive(edition: str, database: Path | None, *, date: str = "20261201", extra: dict[str, bytes] | None = None) -> bytes:
    """A tar.gz laid out as MaxMind's download protocol serves it: `{edition}_{date}/{edition}.mmdb`
    beside the licence files."""
    import io
    import tarfile

    members = {
        f"{edition}_{date}/COPYRIGHT.txt": b"Database and Contents Copyright (c) MaxMind, Inc.\n",
        f"{edition}_{date}/LICENSE.txt": b"Use of this MaxMind product is governed by MaxMind's GeoLite2 EULA.\n",
        **({f"{edition}_{date}/{edition}.mmdb": database.read_bytes()} if database is not None else {}),
        **(extra or {}),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(f"{edition}_{date}")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256_line(archive: bytes, edition: str, *, date: str = "20261201") -> bytes:
    """The `suffix=tar.gz.sha256` answer: `<hex>  <archive name>`."""
    import hashlib

    return f"{hashlib.sha256(archive).hexdigest()}  {edition}_{date}.tar.gz\n".encode()
