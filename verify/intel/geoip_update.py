"""`verify geoip update`: MaxMind editions fetched by MaxMind's download protocol, checked,
and put in place atomically for the running service to pick up.

The protocol (https://dev.maxmind.com/geoip/updating-databases/#directly-downloading-databases):
`GET {base}/geoip/databases/{edition}/download?suffix=tar.gz` with HTTP basic auth (account id,
licence key) answers with a redirect to the archive; `suffix=tar.gz.sha256` gives
`<hex>  <archive name>`. The archive holds `{edition}_{YYYYMMDD}/{edition}.mmdb`.

Nothing in use is touched until a new file has passed every check: the archive's SHA-256, a
readable tar.gz with the edition's .mmdb, a MaxMind DB whose `database_type` fits the role the
file is configured for. Then it is renamed over the old file (same folder, fsynced), and
`verify.intel.geoip.MaxMindDatabase` reopens it within its reload interval.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import maxminddb
import requests

from verify.errors import UpstreamFailed
from verify.intel.download import DownloadFailed, fetch
from verify.intel.geoip import ACCEPTED_TYPES
from verify.settings import Settings

SHA256_LINE = re.compile(r"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")
RECORD_SUFFIX = ".sha256"  # beside the file: the archive digest it was installed from
ROLE_VARIABLES = {"city": "VERIFY_GEOIP_CITY_DB", "asn": "VERIFY_GEOIP_ASN_DB", "anonymous": "VERIFY_GEOIP_ANONYMOUS_DB"}


class UpdateFailed(UpstreamFailed):
    """One edition could not be updated; the file in use was left as it was."""


@dataclass(frozen=True)
class Edition:
    """One configured edition and the file it is written to."""

    name: str
    role: str
    path: Path


@dataclass(frozen=True)
class Outcome:
    edition: Edition
    updated: bool
    database_type: str | None = None
    build_date: datetime | None = None

    def describe(self) -> str:
        if not self.updated:
            return f"{self.edition.name}: unchanged ({self.edition.path})"
        built = f", built {self.build_date:%Y-%m-%d}" if self.build_date else ""
        return f"{self.edition.name}: updated {self.edition.path} ({self.database_type}{built})"


def role_of(edition: str) -> str | None:
    """The role an edition serves, from MaxMind's edition ids (GeoLite2-City, GeoIP2-Anonymous-IP, ...)."""
    if "Anonymous" in edition:
        return "anonymous"
    if edition.endswith("-ASN") or edition.endswith("-ISP"):
        return "asn"
    if any(kind in edition for kind in ("City", "Country", "Enterprise")):
        return "city"
    return None


def configured_editions(settings: Settings) -> list[Edition]:
    """The editions to fetch, each with its target path; UpdateFailed names every configuration problem."""
    paths = {"city": settings.geoip_city_db, "asn": settings.geoip_asn_db, "anonymous": settings.geoip_anonymous_db}
    problems, editions, taken = [], [], {}
    if not (settings.maxmind_account_id and settings.maxmind_license_key):
        problems.append("set VERIFY_MAXMIND_ACCOUNT_ID and VERIFY_MAXMIND_LICENSE_KEY (from your MaxMind account)")
    if not settings.geoip_editions:
        problems.append("VERIFY_GEOIP_EDITIONS names no edition")
    for name in settings.geoip_editions:
        role = role_of(name)
        if role is None:
            problems.append(f"{name} is not a City, Country, Enterprise, ASN, ISP or Anonymous IP edition")
            continue
        if not paths[role]:
            problems.append(f"{name} is a {role} edition: set {ROLE_VARIABLES[role]} to the file it should be written to")
            continue
        if role in taken:
            problems.append(f"{taken[role]} and {name} would both be written to {ROLE_VARIABLES[role]}")
            continue
        taken[role] = name
        editions.append(Edition(name, role, Path(paths[role])))
    if problems:
        raise UpdateFailed("; ".join(problems))
    return editions


def download_url(base: str, edition: str, suffix: str) -> str:
    return f"{base.rstrip('/')}/geoip/databases/{edition}/download?suffix={suffix}"


def read_record(path: Path) -> str | None:
    """The archive digest the file at `path` was installed from, if it is still there."""
    try:
        match = SHA256_LINE.match(path.with_name(path.name + RECORD_SUFFIX).read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1).lower() if match and path.exists() else None


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX); Windows has no such call.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def _temporary_beside(path: Path, tag: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file in the target's folder (so that os.replace is a rename), removed unless kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=f".{tag}", delete=False)
    temporary = Path(handle.name)
    try:
        with handle:
            yield handle, temporary
    finally:
        temporary.unlink(missing_ok=True)


def replace_atomically(source: Path, target: Path) -> None:
    """Rename `source` over `target` durably, readable by the service (tempfile creates 0600 files)."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o644
    os.chmod(source, mode)
    os.replace(source, target)
    _fsync_folder(target.parent)


def write_record(path: Path, digest: str, archive_name: str) -> None:
    record = path.with_name(path.name + RECORD_SUFFIX)
    with _temporary_beside(record, "tmp") as (handle, temporary):
        handle.write(f"{digest}  {archive_name}\n".encode("ascii"))
        handle.flush()
        os.fsync(handle.fileno())
        replace_atomically(temporary, record)


def parse_sha256(text: bytes, url: str) -> tuple[str, str]:
    """(hex digest, archive name) from MaxMind's `<hex>  <name>` line."""
    try:
        match = SHA256_LINE.match(text.decode("ascii").strip())
    except UnicodeDecodeError:
        match = None
    if match is None:
        raise UpdateFailed(f"{url} did not answer with a SHA-256 line (\"<64 hex digits>  <archive name>\")")
    return match.group(1).lower(), match.group(2)


def extract_mmdb(archive: BinaryIO, edition: str, sink: BinaryIO) -> None:
    """Copy the edition's .mmdb out of the tar.gz into `sink`; by content, never by the member's path."""
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            members = [member for member in tar if member.isfile() and member.name.endswith(".mmdb")]
            wanted = [m for m in members if Path(m.name).name == f"{edition}.mmdb"] or members
            if not wanted:
                raise UpdateFailed(f"the {edition} archive holds no .mmdb file")
            reader = tar.extractfile(wanted[0])
            if reader is None:
                raise UpdateFailed(f"the {edition} archive's {wanted[0].name} cannot be read")
            shutil.copyfileobj(reader, sink, 1024 * 1024)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise UpdateFailed(f"the {edition} archive is not a readable tar.gz ({error or type(error).__name__})") from None


def check_database(path: Path, edition: Edition) -> tuple[str, datetime]:
    """The file's database_type and build date; UpdateFailed unless it is a MaxMind DB for the role."""
    try:
        with maxminddb.open_database(str(path), maxminddb.MODE_FILE) as reader:
            metadata = reader.metadata()
            database_type = str(metadata.database_type)
            built = datetime.fromtimestamp(int(metadata.build_epoch), timezone.utc)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError, RuntimeError) as error:
        raise UpdateFailed(f"the {edition.name} archive holds a file that is not a MaxMind DB ({error})") from None
    accepted = ACCEPTED_TYPES[edition.role]
    if not any(kind in database_type for kind in accepted):
        raise UpdateFailed(
            f"{edition.name} holds a {database_type!r} database, which cannot serve as the {edition.role} "
            f"database ({ROLE_VARIABLES[edition.role]} takes {' or '.join(accepted)})"
        )
    return database_type, built


class Updater:
    """Downloads and installs editions with one account's credentials."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_total: Callable[[int | None], None] | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.auth = (settings.maxmind_account_id or "", settings.maxmind_license_key or "")
        self.http = requests.Session()
        self.on_total = on_total
        self.on_chunk = on_chunk

    def _get(self, url: str, sink: BinaryIO, *, progress: bool = False) -> None:
        fetch(
            url, sink, timeout=self.settings.download_timeout, auth=self.auth, session=self.http,
            on_total=self.on_total if progress else None, on_chunk=self.on_chunk if progress else None,
        )

    def update(self, edition: Edition, *, force: bool = False) -> Outcome:
        """Install the newest copy of one edition unless the one in place is it already."""
        base = self.settings.maxmind_url
        try:
            digest_body = BytesIO()
            self._get(download_url(base, edition.name, "tar.gz.sha256"), digest_body)
            expected, archive_name = parse_sha256(digest_body.getvalue(), download_url(base, edition.name, "tar.gz.sha256"))
            if not force and read_record(edition.path) == expected:
                return Outcome(edition, updated=False)
            with _temporary_beside(edition.path, "tar.gz") as (archive, _):
                digest = hashlib.sha256()
                self._get(download_url(base, edition.name, "tar.gz"), _Hashing(archive, digest), progress=True)
                if digest.hexdigest() != expected:
                    raise UpdateFailed(
                        f"the {edition.name} archive's SHA-256 is {digest.hexdigest()}, not {expected} as "
                        "MaxMind's checksum says: a damaged or tampered download"
                    )
                archive.seek(0)
                with _temporary_beside(edition.path, "mmdb") as (database, candidate):
                    extract_mmdb(archive, edition.name, database)
                    database.flush()
                    os.fsync(database.fileno())
                    database_type, built = check_database(candidate, edition)
                    replace_atomically(candidate, edition.path)
            write_record(edition.path, expected, archive_name)
        except DownloadFailed as error:
            raise UpdateFailed(f"{edition.name}: {error.detail}") from None
        except OSError as error:  # the target folder is not writable, the disk is full, ...
            raise UpdateFailed(f"{edition.name}: cannot write beside {edition.path}: {error}") from None
        return Outcome(edition, updated=True, database_type=database_type, build_date=built)


class _Hashing:
    """A file that also feeds what is written to a digest."""

    def __init__(self, sink: BinaryIO, digest: "hashlib._Hash") -> None:
        self._sink = sink
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._sink.write(data)
