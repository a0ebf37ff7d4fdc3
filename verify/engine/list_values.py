"""List values, validated and normalised per kind: the one place that decides what an entry looks like.

The same functions normalise what an admin puts on a list and what a signup is looked up
by, so that a stored entry and a looked-up key always agree (an entry of kind `email` is
the canonical mailbox, because signups are matched on their canonical address).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from verify.engine import identity
from verify.engine.identity import COUNTRY_CODES, MAX_ASN, MAX_DEVICE_LENGTH, IdentityInvalid, MailRules

MAX_PHONE_DIGITS = 15  # E.164 numbers have at most 15 digits
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

__all__ = ["COUNTRY_CODES", "MAX_ASN", "MAX_DEVICE_LENGTH", "ValueInvalid"]

# A value that cannot be an entry of its list's kind: the identity normalisers' error.
ValueInvalid = IdentityInvalid


# -- one function per kind: the identity normalisers, so that entries and signups agree ---

email_domain = identity.email_domain
ip_entry = identity.ip_entry
asn = identity.asn
country = identity.country
device = identity.device


def email_address(raw: str, *, rules: MailRules) -> str:
    """The canonical mailbox of an address, under the same rules (the generic one included) as signups."""
    try:
        return identity.email_key(raw, rules=rules).canonical
    except IdentityInvalid as error:
        raise ValueInvalid(f"not a valid email address: {error}") from None


def phone_prefix(raw: str) -> str:
    """An E.164 prefix as digits: spaces and dashes are tolerated, the leading + is optional."""
    # Fullwidth and other Unicode decimal digits are digits, as in phone numbers (libphonenumber).
    text = "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in identity.clean_text(raw))
    text = re.sub(r"[\s\-]", "", text)
    text = text[1:] if text.startswith(("+", "\uff0b")) else text  # ASCII or fullwidth plus
    if not text or not text.isascii() or not text.isdigit():
        raise ValueInvalid("not an E.164 prefix (digits, such as +44 7700 or 4477)")
    if text.startswith("0"):
        raise ValueInvalid("an E.164 prefix starts with the country code, never with 0")
    if len(text) > MAX_PHONE_DIGITS:
        raise ValueInvalid(f"an E.164 number has at most {MAX_PHONE_DIGITS} digits")
    return text


# -- by kind ----------------------------------------------------------------------------

def normaliser(kind: str, *, rules: MailRules) -> Callable[[str], str]:
    """The function that normalises values of one list kind."""
    by_kind: dict[str, Callable[[str], str]] = {
        "email": lambda raw: email_address(raw, rules=rules),
        "email_domain": email_domain,
        "ip": ip_entry,
        "asn": asn,
        "country": country,
        "phone_prefix": phone_prefix,
        "device": device,
    }
    if kind not in by_kind:
        raise ValueError(f"unknown list kind {kind!r}")
    return by_kind[kind]


class ValuesInvalid(ValueError):
    """One or more values were refused; `errors` names each, as `{"field", "message"}`."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Located:
    """A raw value and where it came from, for error messages (`values[3]`, `line 12`)."""

    where: str
    raw: str


def normalise_all(kind: str, values: Iterable[Located], *, rules: MailRules) -> list[str]:
    """Normalise every value, or raise ValuesInvalid naming each bad one (all or nothing)."""
    normalise = normaliser(kind, rules=rules)
    good: list[str] = []
    errors: list[dict[str, str]] = []
    for item in values:
        try:
            good.append(normalise(item.raw))
        except ValueInvalid as error:
            errors.append({"field": item.where, "message": f"{item.raw[:80]!r}: {error}"})
    if errors:
        raise ValuesInvalid(errors)
    return good


def text_lines(text: str) -> list[Located]:
    """Values of a text file: one per line, blank lines skipped, `#` starts a comment.

    A `#` only starts a comment at the start of a line or after white space, so a device id
    such as `abc#1` survives.
    """
    found = []
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        value = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if value:
            found.append(Located(f"line {number}", value))
    return found


@dataclass(frozen=True)
class FileRow:
    """One value of an uploaded or imported file, with its own reason and expiry (CSV) if any."""

    located: Located
    reason: str | None = None
    expires_at: datetime | None = None


MAX_REASON_LENGTH = 500


def file_rows(text: str, *, is_csv: bool, now: datetime, parse_time: Callable[[str], datetime]) -> list[FileRow]:
    """The values of a list file (`verify lists import` and uploads): text or CSV.

    Text holds one value per line with `#` comments. CSV holds the value in the first column
    and, optionally, a reason and an RFC 3339 expiry; a first row whose first cell is `value`
    is a header. Every bad reason or expiry is named by its line (ValuesInvalid).
    """
    if not is_csv:
        return [FileRow(located) for located in text_lines(text)]
    rows: list[FileRow] = []
    errors: list[dict[str, str]] = []
    for number, cells in _csv_records(text.lstrip("\ufeff")):
        cells = [cell.strip() for cell in cells]
        if not cells or not cells[0] or cells[0].startswith("#") or (number == 1 and cells[0].lower() == "value"):
            continue
        reason = cells[1] if len(cells) > 1 and cells[1] else None
        expires_at = None
        if len(cells) > 2 and cells[2]:
            try:
                expires_at = parse_time(cells[2])
            except ValueError as error:
                errors.append({"field": f"line {number}", "message": f"expires_at {cells[2][:80]!r} {error}"})
                continue
            if expires_at <= now:
                errors.append({"field": f"line {number}", "message": f"expires_at {cells[2][:80]!r} is in the past"})
                continue
        if reason is not None and (len(reason) > MAX_REASON_LENGTH or "\x00" in reason):
            errors.append({"field": f"line {number}", "message": f"the reason must be at most {MAX_REASON_LENGTH} characters, without NUL"})
            continue
        rows.append(FileRow(Located(f"line {number}", cells[0]), reason, expires_at))
    if errors:
        raise ValuesInvalid(errors)
    return rows


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(number, cells) of each CSV record; a record the csv module cannot read is a ValuesInvalid
    naming its line. newline="" lets the reader see \r, \n and \r\n as it expects (a lone \r
    ends a record rather than failing as a new-line in an unquoted field)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ValuesInvalid([{"field": f"line {reader.line_num}", "message": f"not readable as CSV: {error}"}]) from None
        number += 1
        yield number, cells


CSV_HEADER = ("value", "reason", "expires_at", "source")


def entries_csv(entries: Iterable[tuple[str, str | None, datetime | None, str]]) -> Iterator[str]:
    """CSV lines of (value, reason, expires_at, source): the export that `file_rows` reads back."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def cells() -> Iterator[tuple]:
        yield CSV_HEADER
        for value, reason, expires_at, source in entries:
            yield value, reason or "", expires_at.isoformat().replace("+00:00", "Z") if expires_at else "", source

    for row in cells():
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
