"""One normaliser per kind of identity, and the keys a signup is remembered by.

Signups, list entries, search filters, erasure and history keys all go through these
functions, so that what is stored and what is looked up always agree. Case and Unicode are
decided here, in Python, never by SQL `lower()` (SQLite folds only ASCII, PostgreSQL folds
by its locale): one spelling is stored per key, and the databases compare it byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
import pycountry
from stdnum import luhn

from verify.engine.confusables import ascii_skeleton
from verify.engine.email import EmailInvalid, looks_random, parse_email

MAX_DEVICE_LENGTH = 256
MAX_ASN = 4_294_967_295  # 32-bit AS numbers (RFC 6793)

# Pasted from chat apps, spreadsheets and rich-text editors; invisible, never part of an identity.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
SURROUNDING = re.compile(f"^[\\s{ZERO_WIDTH}]+|[\\s{ZERO_WIDTH}]+$")

# ISO 3166-1 alpha-2 as assigned (pycountry follows the ISO maintenance agency). XK (Kosovo)
# is user-assigned, but GeoIP databases report it, so a list must be able to name it.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries) | {"XK"}


class IdentityInvalid(ValueError):
    """A value that cannot be an identity of its kind; the message is written for people."""


def clean_text(raw: str) -> str:
    """NFC, then surrounding white space and zero-width characters cut: the first step of every normaliser."""
    return SURROUNDING.sub("", unicodedata.normalize("NFC", raw))


@dataclass(frozen=True)
class ProviderRule:
    """How one mail provider maps addresses onto mailboxes (its documented aliasing)."""

    provider: str
    canonical_domain: str
    tag_separators: str = "+"
    ignore_chars: str = ""
    dashes_are_dots: bool = False
    case_fold: bool = True


# Most mail servers (Postfix, Exchange, Google Workspace, Microsoft 365) deliver user+tag to
# user by default, and none in common use treats the local part case-sensitively although
# RFC 5321 allows it; a farm on its own catch-all domain gains nothing from either.
GENERIC_RULE = ProviderRule(provider="generic", canonical_domain="", tag_separators="+")


def provider_rules(document: Mapping[str, Any]) -> tuple[dict[str, ProviderRule], ProviderRule]:
    """Read the aliasing rules (data/email_providers.json): domain -> rule, and the rule for every other domain."""
    rules: dict[str, ProviderRule] = {}
    for provider in document["providers"]:
        for domain in provider["domains"]:
            rules[domain] = ProviderRule(
                provider=provider["provider"],
                canonical_domain=provider.get("canonical_domain", domain),
                tag_separators=provider.get("tag", "+"),
                ignore_chars=provider.get("ignore", ""),
                dashes_are_dots=provider.get("dashes_are_dots", False),
                case_fold=provider.get("case_fold", True),
            )
    generic = document.get("generic", {})
    fallback = ProviderRule(
        provider="generic",
        canonical_domain="",
        tag_separators=generic.get("tag", GENERIC_RULE.tag_separators),
        case_fold=generic.get("case_fold", GENERIC_RULE.case_fold),
    )
    return rules, fallback


@dataclass(frozen=True)
class MailRules:
    """The providers' aliasing rules and the rule for every other domain: one value, never half of it."""

    rules: Mapping[str, ProviderRule] = field(default_factory=dict)
    fallback: ProviderRule = GENERIC_RULE

    def rule_for(self, ascii_domain: str) -> ProviderRule:
        return self.rules.get(ascii_domain, self.fallback)


def fold_case(text: str) -> str:
    """Unicode case folding (`ß` and `SS` agree), NFC again because folding may decompose."""
    return unicodedata.normalize("NFC", text.casefold())


def canonical_email(
    local: str, ascii_domain: str, rules: Mapping[str, ProviderRule], *, fallback: ProviderRule = GENERIC_RULE
) -> str:
    """The mailbox behind an address: tags cut, dots dropped and domains merged where the provider does."""
    rule = rules.get(ascii_domain, fallback)
    local = ascii_skeleton(local) if ascii_domain in rules else local  # known providers take ASCII only: look-alikes are one mailbox
    domain = rule.canonical_domain or ascii_domain
    mailbox = fold_case(local) if rule.case_fold else local
    for separator in rule.tag_separators:
        head, _, _ = mailbox.partition(separator)
        if head:  # "+tag@" alone is a mailbox name, not a tag
            mailbox = head
    if rule.dashes_are_dots:
        mailbox = mailbox.replace("-", ".")
    for char in rule.ignore_chars:
        mailbox = mailbox.replace(char, "")
    return f"{mailbox or local}@{domain}"


SEPARATOR = re.compile(r"([._\-+])")
RUN = re.compile(r"[^\W\d_]+|\d+|[^\w]+|_")


def local_template(canonical_local: str) -> str:
    """The shape of a mailbox name: words become `a`, random runs `x`, digit runs `9` per digit.

    `james.wilson8812` and `mary.brown1907` share `a.a9999`; `k7f9q2mx` and `p3z8w1ab` share `x`:
    generators fill one template. A chunk between separators that looks random as a whole is
    one `x`, so that random strings of one length fold whatever their letters and digits.
    """
    parts = []
    for chunk in SEPARATOR.split(canonical_local):
        if not chunk:
            continue
        if SEPARATOR.fullmatch(chunk):
            parts.append(chunk)
        elif looks_random(chunk):
            parts.append("x")
        else:
            for run in RUN.findall(chunk):
                if run.isdigit():
                    parts.append("9" * min(len(run), 12))
                else:
                    parts.append("x" if looks_random(run) else "a")
    return "".join(parts)[:128]


def is_generated_template(template: str) -> bool:
    """A template with digit or random runs; plain words (`a.a`, first.last) are how people are named."""
    return "9" in template or "x" in template


def phone_block(e164: str) -> str:
    """The number block: E.164 less its last three digits (`+1415555` for `+14155550123`)."""
    return e164[:-3]


def parse_phone(raw: str, *, region: str | None = None) -> phonenumbers.PhoneNumber:
    """A number as typed, national form read in `region`; raises phonenumbers.NumberParseException.

    libphonenumber already reads fullwidth and other Unicode digits; the text is cleaned first.
    """
    return phonenumbers.parse(clean_text(raw), region.upper() if region else None)


def phone_e164(raw: str, *, region: str | None = None) -> str | None:
    """The E.164 key of a phone as typed, or None when it is no possible number.

    A number of the right length for its country code is a key even outside the allocated
    ranges: farms reuse made-up numbers too.
    """
    try:
        number = parse_phone(raw, region=region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_keys(phone: str, *, region: str | None = None) -> tuple[str | None, str | None]:
    """E.164 and number block of a phone as typed (national form needs `region`), or (None, None)."""
    e164 = phone_e164(phone, region=region)
    return (e164, phone_block(e164)) if e164 else (None, None)


# -- addresses and networks ---------------------------------------------------------------

MAPPED_V4 = ipaddress.ip_network("::ffff:0:0/96")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in text:  # RFC 4007 zone ids name an interface of the host, never a client
        raise IdentityInvalid("an address with a zone id (%...) is link-local to one host, not a client address")
    try:
        # Python refuses leading zeros in IPv4 (010.1.1.1): octal to some parsers, decimal to others.
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise IdentityInvalid("not an IPv4 or IPv6 address") from None
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:a.b.c.d is an IPv4 client seen by a dual-stack socket
        return ip.ipv4_mapped
    return ip


def ip_address(raw: str) -> str:
    """An IP address key: compressed text, IPv4-mapped IPv6 unwrapped to IPv4."""
    return str(_address(clean_text(raw)))


def ip_entry(raw: str) -> str:
    """An IPv4 or IPv6 address, or a CIDR network, in its compressed text form.

    A network with host bits set (`10.0.0.5/24`) is refused rather than widened: it usually
    means a typo, and silently blocking 256 addresses instead of one is the worse mistake.
    A single-host network (`/32`, `/128`) is stored as the plain address; an IPv4-mapped
    network as the IPv4 network it maps.
    """
    text = clean_text(raw)
    if "/" not in text:
        return ip_address(text)
    if "%" in text:
        raise IdentityInvalid("a network with a zone id (%...) is link-local to one host")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            wider = ipaddress.ip_network(text, strict=False)
            raise IdentityInvalid(f"the network has host bits set: did you mean {wider}?") from None
        raise IdentityInvalid("not an IPv4 or IPv6 address or CIDR network") from None
    if network.version == 6 and network.prefixlen >= 96 and network.subnet_of(MAPPED_V4):
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def ip_network(address: str) -> str:
    """The network an address is counted with: /24 for IPv4, /64 for IPv6 (one subscriber's LAN)."""
    ip = _address(address)
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def ip_filter(text: str) -> tuple[str, tuple[str, ...]]:
    """An address or CIDR as the stored keys it covers: ("ip", addresses) or ("ip_network", networks).

    Raises ValueError for text that is neither, or for a range wider than 256 of the
    networks signups are grouped by (/16 for IPv4, /56 for IPv6) or, inside one such
    network, more than 256 addresses: the filter must stay an index lookup.
    """
    text = clean_text(text)
    if "/" not in text or "%" in text:
        return "ip", (ip_address(text),)
    network = ipaddress.ip_network(ip_entry(str(ipaddress.ip_network(text, strict=False))), strict=False)
    group = 24 if network.version == 4 else 64
    if network.prefixlen <= group:
        if group - network.prefixlen > 8:
            raise ValueError(f"{text} is too wide: use a prefix of /{group - 8} or longer")
        return "ip_network", tuple(str(subnet) for subnet in network.subnets(new_prefix=group))
    if network.max_prefixlen - network.prefixlen > 8:
        raise ValueError(f"{text} is too wide inside one /{group}: use /{network.max_prefixlen - 8} or longer, or /{group}")
    return "ip", tuple(str(address) for address in network)


# -- email, domain, country, ASN, device --------------------------------------------------

@dataclass(frozen=True)
class EmailKey:
    """An address as stored (`address`) and the mailbox behind it (`canonical`)."""

    address: str  # NFC local part (case folded where the provider ignores case) @ IDNA domain
    local: str  # as typed, NFC
    domain: str  # Unicode form, lower case
    ascii_domain: str  # IDNA form: what DNS, lists and keys use
    canonical: str
    provider: str | None  # None for the generic rule


def email_key(raw: str, *, rules: MailRules) -> EmailKey:
    """Parse and normalise an address: the one function signups, lists, search and erasure use.

    `user@bücher.de` and `user@xn--bcher-kva.de` are one address; so are spellings that differ
    only in case where the provider ignores case. Raises IdentityInvalid.
    """
    try:
        parsed = parse_email(clean_text(raw))
    except EmailInvalid as error:
        raise IdentityInvalid(str(error)) from None
    rule = rules.rule_for(parsed.ascii_domain)
    local = unicodedata.normalize("NFC", parsed.local)
    stored_local = fold_case(local) if rule.case_fold else local
    return EmailKey(
        address=f"{stored_local}@{parsed.ascii_domain}",
        local=local,
        domain=parsed.domain,
        ascii_domain=parsed.ascii_domain,
        canonical=canonical_email(local, parsed.ascii_domain, rules.rules, fallback=rules.fallback),
        provider=rule.provider if rule is not rules.fallback else None,
    )


def email_domain(raw: str) -> str:
    """A domain in IDNA (A-label) form, lower case, without a trailing dot.

    Parsed exactly as the domain of a signup's address is, so the two always agree.
    """
    text = clean_text(raw)
    if "@" in text:
        raise IdentityInvalid("an email address, not a domain: put addresses on a list of kind email")
    if "/" in text or ":" in text:
        raise IdentityInvalid("a URL or a host with a port, not a domain: give the bare domain (example.com)")
    if text.startswith("*."):
        raise IdentityInvalid("wildcards are not needed: a domain entry already covers its subdomains")
    text = text[:-1] if text.endswith(".") else text  # the DNS root: example.com. is example.com
    if not text:
        raise IdentityInvalid("empty domain")
    try:
        return parse_email(f"postmaster@{text}").ascii_domain
    except EmailInvalid as error:
        # The parser speaks of addresses; the caller gave a domain.
        message = str(error).replace("The part after the @-sign", "The domain").replace("after the @-sign", "at the start")
        raise IdentityInvalid(f"not a valid domain: {message}") from None


def country(raw: str) -> str:
    """An assigned ISO 3166-1 alpha-2 code, upper case (`ZZ`, `UK` and `EU` are not)."""
    code = clean_text(raw).upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise IdentityInvalid("not an ISO 3166-1 alpha-2 country code (two letters, such as GB)")
    if code not in COUNTRY_CODES:
        raise IdentityInvalid(f"{code} is not an assigned ISO 3166-1 country code")
    return code


def asn(raw: str) -> str:
    """An autonomous system number as plain digits: `AS13335` and `13335` are both `13335`."""
    text = clean_text(raw)
    digits = text[2:] if text[:2].lower() == "as" else text
    if not digits.isascii() or not digits.isdigit():
        raise IdentityInvalid("not an AS number (13335 or AS13335)")
    number = int(digits)
    if not 1 <= number <= MAX_ASN:
        raise IdentityInvalid(f"AS numbers run from 1 to {MAX_ASN}")
    return str(number)


def device(raw: str) -> str:
    """A device id: NFC, trimmed; case kept (ids are opaque)."""
    text = clean_text(raw)
    if not text:
        raise IdentityInvalid("empty device id")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise IdentityInvalid("a device id must not contain control characters")
    if len(text) > MAX_DEVICE_LENGTH:
        raise IdentityInvalid(f"a device id has at most {MAX_DEVICE_LENGTH} characters")
    return text


MAX_PAYMENT_LENGTH = 128
CARD_NUMBER = re.compile(r"[0-9]{13,19}")


def looks_like_card_number(raw: str) -> bool:
    """13 to 19 digits (spaces and dashes aside) that pass the Luhn check: a primary account number."""
    digits = re.sub(r"[ \-]", "", raw)
    return CARD_NUMBER.fullmatch(digits) is not None and luhn.is_valid(digits)


def payment_fingerprint(raw: str) -> str:
    """A payment processor's fingerprint of a card: NFC, trimmed, case kept (it is opaque); never a card number."""
    text = clean_text(raw)
    if not text:
        raise IdentityInvalid("empty payment fingerprint")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise IdentityInvalid("a payment fingerprint must not contain control characters")
    if len(text) > MAX_PAYMENT_LENGTH:
        raise IdentityInvalid(f"a payment fingerprint has at most {MAX_PAYMENT_LENGTH} characters")
    # PCI DSS: a card number must never be stored; the processor's fingerprint stands for it.
    if looks_like_card_number(text):
        raise IdentityInvalid("this looks like a card number; send the payment processor's fingerprint of the card instead")
    return text


# -- the keys of one signup ---------------------------------------------------------------

@dataclass(frozen=True)
class Keys:
    """What a signup is remembered and counted by (the Assessment column names)."""

    email: str | None = None  # the stored spelling of the address
    email_canonical: str | None = None
    email_domain: str | None = None
    local_template: str | None = None
    phone_e164: str | None = None
    phone_block: str | None = None
    ip: str | None = None
    ip_network: str | None = None
    asn: int | None = None
    device_id: str | None = None
    payment_fingerprint: str | None = None


def signup_keys(signals: Mapping[str, Any], *, device_id: str | None, payment_fingerprint: str | None = None) -> Keys:
    """Derive every key from the gathered signals (pure: the one place keys are made)."""
    email, phone, ip = signals.get("email") or {}, signals.get("phone") or {}, signals.get("ip") or {}
    canonical = email.get("canonical") if email.get("valid") else None
    e164 = phone.get("e164") if phone.get("possible") else None
    asn_number = ip.get("asn")
    return Keys(
        email=email.get("address") if email.get("valid") else None,
        email_canonical=canonical,
        email_domain=email.get("domain") if canonical else None,
        local_template=local_template(canonical.rsplit("@", 1)[0]) if canonical else None,
        phone_e164=e164,
        phone_block=phone_block(e164) if e164 else None,
        ip=ip.get("address") if ip.get("provided") else None,
        ip_network=ip.get("network") if ip.get("provided") else None,
        asn=asn_number if isinstance(asn_number, int) and not isinstance(asn_number, bool) else None,
        device_id=device_id,
        payment_fingerprint=payment_fingerprint,
    )
