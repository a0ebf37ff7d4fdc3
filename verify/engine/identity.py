"""The keys a signup is remembered by: canonical mailbox, local-part template, number block, network."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

from verify.engine.confusables import ascii_skeleton
from verify.engine.email import looks_random


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


def canonical_email(
    local: str, ascii_domain: str, rules: Mapping[str, ProviderRule], *, fallback: ProviderRule = GENERIC_RULE
) -> str:
    """The mailbox behind an address: tags cut, dots dropped and domains merged where the provider does."""
    rule = rules.get(ascii_domain, fallback)
    local = ascii_skeleton(local) if ascii_domain in rules else local  # known providers take ASCII only: look-alikes are one mailbox
    domain = rule.canonical_domain or ascii_domain
    mailbox = local.lower() if rule.case_fold else local
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


def phone_keys(phone: str, *, region: str | None = None) -> tuple[str | None, str | None]:
    """E.164 and number block of a phone as typed (national form needs `region`), or (None, None)."""
    try:
        number = phonenumbers.parse(phone, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_possible_number(number):
        return None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phone_block(e164)


def ip_network(address: str) -> str:
    """The network an address is counted with: /24 for IPv4, /64 for IPv6 (one subscriber's LAN)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:a.b.c.d is an IPv4 client
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def ip_filter(text: str) -> tuple[str, tuple[str, ...]]:
    """An address or CIDR as the stored keys it covers: ("ip", addresses) or ("ip_network", networks).

    Raises ValueError for text that is neither, or for a range wider than 256 of the
    networks signups are grouped by (/16 for IPv4, /56 for IPv6) or, inside one such
    network, more than 256 addresses: the filter must stay an index lookup.
    """
    text = text.strip()
    if "/" not in text:
        return "ip", (str(ipaddress.ip_address(text)),)
    network = ipaddress.ip_network(text, strict=False)
    group = 24 if network.version == 4 else 64
    if network.prefixlen <= group:
        if group - network.prefixlen > 8:
            raise ValueError(f"{text} is too wide: use a prefix of /{group - 8} or longer")
        return "ip_network", tuple(str(subnet) for subnet in network.subnets(new_prefix=group))
    if network.max_prefixlen - network.prefixlen > 8:
        raise ValueError(f"{text} is too wide inside one /{group}: use /{network.max_prefixlen - 8} or longer, or /{group}")
    return "ip", tuple(str(address) for address in network)
