"""List values, validated and normalised per kind: the one place that decides what an entry looks like.

The same functions normalise what an admin puts on a list and what a signup is looked up
by, so that a stored entry and a looked-up key always agree (an entry of kind `email` is
the canonical mailbox, because signups are matched on their canonical address).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import phonenumbers

from verify.engine.email import EmailInvalid, parse_email
from verify.engine.identity import ProviderRule, canonical_email

MAX_DEVICE_LENGTH = 256
MAX_ASN = 4_294_967_295  # 32-bit AS numbers (RFC 6793)
MAX_PHONE_DIGITS = 15  # E.164 numbers have at most 15 digits
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

# ISO 3166-1 alpha-2: phonenumbers knows every code with a numbering plan; the assigned codes
# without one are added, and Ascension (AC) and Tristan da Cunha (TA), which are ITU regions but
# only "exceptionally reserved" in ISO 3166, are taken out. XK (Kosovo) is user-assigned in ISO,
# but GeoIP databases report it, so a list must be able to name it.
COUNTRY_CODES = frozenset(
    (set(phonenumbers.SUPPORTED_REGIONS) - {"AC", "TA"}) | {"AQ", "BV", "GS", "HM", "PN", "TF", "UM"}
)


class ValueInvalid(ValueError):
    """A value that cannot be an entry of its list's kind; the message is written for people."""


# -- one function per kind ------------------------------------------------------------

def email_domain(raw: str) -> str:
    """A domain in IDNA (ASCII) form, lower case, without a trailing dot.

    Parsed exactly as the domain of a signup's address is, so the two always agree.
    """
    text = raw.strip()
    if "@" in text:
        raise ValueInvalid("an email address, not a domain: put addresses on a list of kind email")
    if "/" in text or ":" in text:
        raise ValueInvalid("a URL or a host with a port, not a domain: give the bare domain (example.com)")
    if text.startswith("*."):
        raise ValueInvalid("wildcards are not needed: a domain entry already covers its subdomains")
    text = text[:-1] if text.endswith(".") else text
    if not text:
        raise ValueInvalid("empty domain")
    try:
        return parse_email(f"postmaster@{text}").ascii_domain
    except EmailInvalid as error:
        # The parser speaks of addresses; the admin gave a domain.
        message = str(error).replace("The part after the @-sign", "The domain").replace("after the @-sign", "at the start")
        raise ValueInvalid(f"not a valid domain: {message}") from None


def email_address(raw: str, *, rules: Mapping[str, ProviderRule]) -> str:
    """The canonical mailbox of an address (provider rules applied: dots, tags, merged domains)."""
    try:
        parsed = parse_email(raw.strip())
    except EmailInvalid as error:
        raise ValueInvalid(f"not a valid email address: {error}") from None
    return canonical_email(parsed.local, parsed.ascii_domain, rules)


def ip_entry(raw: str) -> str:
    """An IPv4 or IPv6 address, or a CIDR network, in its compressed text form.

    A network with host bits set (`10.0.0.5/24`) is refused rather than widened: it usually
    means a typo, and silently blocking 256 addresses instead of one is the worse mistake.
    A single-host network (`/32`, `/128`) is stored as the plain address.
    """
    text = raw.strip()
    try:
        if "/" not in text:
            return str(ipaddress.ip_address(text))
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            wider = ipaddress.ip_network(text, strict=False)
            raise ValueInvalid(f"the network has host bits set: did you mean {wider}?") from None
        raise ValueInvalid("not an IPv4 or IPv6 address or CIDR network") from None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def asn(raw: str) -> str:
    """An autonomous system number as plain digits: `AS13335` and `13335` are both `13335`."""
    text = raw.strip()
    digits = text[2:] if text[:2].lower() == "as" else text
    if not digits.isascii() or not digits.isdigit():
        raise ValueInvalid("not an AS number (13335 or AS13335)")
    number = int(digits)
    if not 1 <= number <= MAX_ASN:
        raise ValueInvalid(f"AS numbers run from 1 to {MAX_ASN}")
    return str(number)


def country(raw: str) -> str:
    """An assigned ISO 3166-1 alpha-2 code, upper case."""
    code = raw.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueInvalid("not an ISO 3166-1 alpha-2 country code (two letters, such as GB)")
    if code not in COUNTRY_CODES:
        raise ValueInvalid(f"{code} is not an assigned ISO 3166-1 country code")
    return code


def phone_prefix(raw: str) -> str:
    """An E.164 prefix as digits: spaces and dashes are tolerated, the leading + is optional."""
    text = re.sub(r"[\s\-]", "", raw)
    text = text[1:] if text.startswith("+") else text
    if not text or not text.isascii() or not text.isdigit():
        raise ValueInvalid("not an E.164 prefix (digits, such as +44 7700 or 4477)")
    if text.startswith("0"):
        raise ValueInvalid("an E.164 prefix starts with the country code, never with 0")
    if len(text) > MAX_PHONE_DIGITS:
        raise ValueInvalid(f"an E.164 number has at most {MAX_PHONE_DIGITS} digits")
    return text


def device(raw: str) -> str:
    """A device id, trimmed."""
    text = raw.strip()
    if not text:
        raise ValueInvalid("empty device id")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise ValueInvalid("a device id must not contain control characters")
    if len(text) > MAX_DEVICE_LENGTH:
        raise ValueInvalid(f"a device id has at most {MAX_DEVICE_LENGTH} characters")
    return text


# -- by kind ----------------------------------------------------------------------------

def normaliser(kind: str, *, rules: Mapping[str, ProviderRule]) -> Callable[[str], str]:
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


def normalise_all(kind: str, values: Iterable[Located], *, rules: Mapping[str, ProviderRule]) -> list[str]:
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
