"""A real DNS server on loopback (dnslib) answering from a small zone the tests choose."""

from __future__ import annotations

import socket
import threading
import time

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

# name -> list of (type, value). A name absent from the zone is NXDOMAIN; a name in
# SLOW sleeps past any sane timeout; a name in BROKEN answers SERVFAIL.
DEFAULT_ZONE: dict[str, list[tuple[str, str]]] = {
    "example-mail.com.": [("MX", "10 mx1.example-mail.com."), ("A", "192.0.2.10")],
    "mx1.example-mail.com.": [("A", "192.0.2.10")],
    "acme-corp.io.": [("MX", "10 mail.acme-corp.io.")],
    "a-only.net.": [("A", "192.0.2.20")],
    "v6-only.net.": [("AAAA", "2001:db8::20")],
    "nullmx.org.": [("MX", "0 .")],
    "no-records.net.": [("TXT", "v=spf1 -all")],
    "gmial.com.": [("MX", "10 mx.gmial.com.")],
}
SLOW = {"slow-dns.com."}
BROKEN = {"servfail.com."}


class ZoneResolver(BaseResolver):
    def __init__(self, zone: dict[str, list[tuple[str, str]]]) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((name, qtype))
        if name in SLOW:
            time.sleep(3)
            return reply
        if name in BROKEN:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if name not in self.zone:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in self.zone[name]:
            if rtype != qtype:
                continue
            if rtype == "MX":
                preference, exchange = value.split()
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(exchange, int(preference)), ttl=300))
            elif rtype == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=300))
            elif rtype == "AAAA":
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=300))
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackDNS:
    """Start with `start()`; `nameserver` is the VERIFY_DNS_NAMESERVERS value."""

    def __init__(self, zone: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.resolver = ZoneResolver(dict(zone or DEFAULT_ZONE))
        self.port = free_udp_port()
        self.server = DNSServer(self.resolver, address="127.0.0.1", port=self.port, logger=DNSLogger(log="-request,-reply,-truncated,-data", prefix=False))

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1@{self.port}"

    def start(self) -> "LoopbackDNS":
        self.server.start_thread()
        return self

    def stop(self) -> None:
        self.server.stop()


if __name__ == "__main__":
    dns = LoopbackDNS().start()
    print(dns.nameserver)
    threading.Event().wait()
