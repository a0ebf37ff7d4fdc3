"""List values, validated and normalised per kind: the one place that decides what an entry looks like.

The same functions normalise what an admin puts on a list and what a signup is looked up
by, so that a stored entry and a looked-up key always agree (an entry of kind `email` is
the canonical mailbox, because signups are matched on their canonical address).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
