"""Mail deliverability of a domain from its MX records, with a cache and a hard deadline."""

from __future__ import annotations

import time

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from verify import metrics

# Outcomes, as shown in signals.email.mx:
OK = "ok"  # MX hosts, or an A/AAAA record that serves as the implicit MX (RFC 5321 5.1)
NULL_MX = "null_mx"  # "MX 0 ." says the domain accepts no mail (RFC 7505)
NO_MAIL_HOST = "no_mail_host"  # the domain does not exist, or has neither MX nor A/AAAA
UNKNOWN = "unknown"  # timeout or server failure: never a penalty
SKIPPED = "skipped"  # the check is switched off


def parse_nameserver(text: str) -> tuple[str, int]:
    """`127.0.0.1`, `127.0.0.1@5353` or `::1@5353`."""
    address, _, port = text.partition("@")
    return address, int(port) if port else 53


class MxChecker:
    """Answers whether a domain can receive mail, within `timeout` seconds in all."""

    def __init__(self, *, timeout: float, nameservers: tuple[str, ...] = (), cache_size: int = 50_000) -> None:
        self.timeout = timeout
        if nameservers:
            self.resolver = dns.resolver.Resolver(configure=False)
            parsed = [parse_nameserver(text) for text in nameservers]
            self.resolver.nameservers = [address for address, _ in parsed]
            self.resolver.nameserver_ports = {address: port for address, port in parsed}
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                self.resolver = dns.resolver.Resolver(configure=False)
                self.resolver.nameservers = ["127.0.0.1"]
        # dnspython's cache keeps answers (negative ones too) for their TTL.
        self.resolver.cache = dns.resolver.LRUCache(cache_size)

    def check(self, ascii_domain: str) -> str:
        """One of OK, NULL_MX, NO_MAIL_HOST or UNKNOWN; never raises."""
        outcome = self._check(ascii_domain)
        metrics.record_lookup("dns_mx", ok=outcome != UNKNOWN)
        return outcome

    def _check(self, ascii_domain: str) -> str:
        deadline = time.monotonic() + self.timeout
        try:
            mx = self._query(ascii_domain, "MX", deadline)
            if mx is not None:
                hosts = [record.exchange for record in mx]
                if len(hosts) == 1 and hosts[0] == dns.name.root:
                    return NULL_MX
                return OK
            for rdtype in ("A", "AAAA"):
                if self._query(ascii_domain, rdtype, deadline) is not None:
                    return OK
            return NO_MAIL_HOST
        except dns.resolver.NXDOMAIN:
            return NO_MAIL_HOST
        except (dns.exception.DNSException, OSError, ValueError):
            return UNKNOWN

    def _query(self, domain: str, rdtype: str, deadline: float) -> dns.resolver.Answer | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout()
        try:
            return self.resolver.resolve(domain, rdtype, lifetime=remaining, search=False)
        except dns.resolver.NoAnswer:
            return None


class NullMxChecker:
    """Used when VERIFY_MX_CHECK is off."""

    def check(self, ascii_domain: str) -> str:
        return SKIPPED
