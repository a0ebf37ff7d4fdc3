"""What an IP address says on its own (its scope), and the checks over signals["ip"].

The GeoIP values arrive in the signals already (verify.intel.geoip reads them); the checks
below only read signals, so that a stored assessment can be re-judged under another policy.
A value the service could not know is the string "unknown" and never fires a reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from verify.engine.models import Finding, Signals

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Named scopes, tested in order; from the IANA special-purpose address registries.
SCOPES: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("unspecified", _networks("0.0.0.0/32", "::/128")),
    ("loopback", _networks("127.0.0.0/8", "::1/128")),
    # RFC 5737, RFC 3849 and RFC 9637 (3fff::/20).
    ("documentation", _networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")),
    ("private", _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    # RFC 6598 carrier-grade NAT space: never the address a server sees from the internet.
    ("shared", _networks("100.64.0.0/10")),
    ("link_local", _networks("169.254.0.0/16", "fe80::/10")),
    ("multicast", _networks("224.0.0.0/4", "ff00::/8")),
)


def address_scope(address: str) -> str:
    """global, or the kind of special-purpose space the address is in (reserved for the rest)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for scope, networks in SCOPES:
        if any(ip in network for network in networks if network.version == ip.version):
            return scope
    # Benchmarking, "this network", 240/4, IETF protocol space, IPv6 outside 2000::/3, ...
    if not ip.is_global or ip.is_reserved:
        return "reserved"
    return "global"


def is_country(value: Any) -> bool:
    """A known ISO 3166-1 alpha-2 code (not None, not "unknown")."""
    return isinstance(value, str) and len(value) == 2 and value.isalpha()


def _ip(signals: Signals) -> dict[str, Any]:
    ip = signals.get("ip") or {}
    return ip if ip.get("provided") else {}


def _allow_listed(signals: Signals) -> bool:
    return any(m.get("kind") == "ip" and m.get("action") == "allow" for m in signals.get("lists", ()))


# -- checks over signals["ip"] -----------------------------------------------------------

def check_invalid_or_private(signals: Signals, _policy: object) -> Iterator[Finding]:
    # An allow-listed address is a deliberate exception (an office proxy, a test rig).
    ip = _ip(signals)
    scope = ip.get("scope")
    if scope and scope != "global" and not _allow_listed(signals):
        yield Finding("ip.invalid_or_private", f"{ip['address']} is {scope.replace('_', '-')} address space, not a public client address")


def _flag_check(code: str, flag: str, what: str):
    def check(signals: Signals, _policy: object) -> Iterator[Finding]:
        ip = _ip(signals)
        if ip.get(flag) is True:
            yield Finding(code, f"{ip['address']} is {what}")

    check.__name__ = f"check_{flag}"
    return check


def check_hosting(signals: Signals, _policy: object) -> Iterator[Finding]:
    ip = _ip(signals)
    owner = f" ({ip['as_org']})" if isinstance(ip.get("as_org"), str) and ip["as_org"] != "unknown" else ""
    if ip.get("hosting_source"):  # a published cloud range, where no Anonymous IP database answered
        yield Finding("ip.hosting", f"{ip['address']} is in {ip.get('hosting_network')}, on the {ip['hosting_source']}{owner}")
    elif ip.get("is_hosting_provider") is True:
        yield Finding("ip.hosting", f"{ip['address']} belongs to a hosting or datacenter network{owner}")
    elif ip.get("user_type") == "hosting":
        yield Finding("ip.hosting", f"{ip['address']} is used by a hosting provider{owner}")


def check_country_mismatch(signals: Signals, _policy: object) -> Iterator[Finding]:
    ip = _ip(signals)
    country, declared = ip.get("country"), ip.get("declared_country")
    if is_country(country) and is_country(declared) and country != declared:
        yield Finding("ip.country_mismatch", f"the IP is in {country}, the user declared {declared}")


CHECKS = (
    check_invalid_or_private,
    check_hosting,
    _flag_check("ip.anonymous_vpn", "is_anonymous_vpn", "a known anonymous VPN exit"),
    _flag_check("ip.tor", "is_tor_exit_node", "a Tor exit node"),
    _flag_check("ip.public_proxy", "is_public_proxy", "a public proxy"),
    _flag_check("ip.residential_proxy", "is_residential_proxy", "a residential proxy"),
    check_country_mismatch,
)
