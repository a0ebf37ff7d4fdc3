"""The keys a signup is remembered by: canonical mailbox, local-part template, number block, network."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from verify.engine.email import looks_random


@dataclass(frozen=True)
class ProviderRule:
    """How one mail provider maps addresses onto mailboxes (its documented aliasing)."""

    provider: str
    canonical_domain: str
    tag_separators: str = "+"
    ignore_dots: bool = False
    dashes_are_dots: bool = False
    case_fold: bool = True


GENERIC_RULE = ProviderRule(provider="generic", canonical_domain="", tag_separators="+")


def canonical_email(local: str, ascii_domain: str, rules: Mapping[str, ProviderRule]) -> str:
    """The mailbox behind an address: tags cut, dots dropped and domains merged where the provider does."""
    rule = rules.get(ascii_domain, GENERIC_RULE)
    domain = rule.canonical_domain or ascii_domain
    mailbox = local.lower() if rule.case_fold else local
    for separator in rule.tag_separators:
        head, _, _ = mailbox.partition(separator)
        if head:
            mailbox = head
    if rule.dashes_are_dots:
        mailbox = mailbox.replace("-", ".")
    if rule.ignore_dots:
        mailbox = mailbox.replace(".", "")
    return f"{mailbox}@{domain}"


TOKEN = re.compile(r"[^\W\d_]+|\d+|[._\-+]")


def local_template(canonical_local: str) -> str:
    """The shape of a mailbox name: words become `a`, random runs `x`, digit runs `9` per digit.

    `james.wilson8812` and `mary.brown1907` share `a.a9999`: generators fill one template.
    """
    parts = []
    for token in TOKEN.findall(canonical_local):
        if token.isdigit():
            parts.append("9" * min(len(token), 12))
        elif token in "._-+":
            parts.append(token)
        else:
            parts.append("x" if looks_random(token) else "a")
    return "".join(parts)[:128]


def phone_block(e164: str) -> str:
    """The number block: E.164 less its last three digits (`+1415555` for `+14155550123`)."""
    return e164[:-3]


def ip_network(address: str) -> str:
    """The network an address is counted with: /24 for IPv4, /64 for IPv6."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:a.b.c.d is an IPv4 client
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
