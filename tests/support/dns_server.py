"""Real DNS servers on loopback (dnslib): one answering from a small zone the tests choose,
and one that never answers. Both count the queries they receive."""

from __future__ import annotations

import socket
import threading
import time

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSError, DNSRecord
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
    # What VERIFY_DNS_CANARY names in tests: a name that must exist.
    "canary.verify-test.net.": [("MX", "10 mx.canary.verify-test.net."), ("A", "192.0.2.53")],
}
CANARY = "canary.verify-test.net"
SLOW = {"slow-dns.com."}
BROKEN = {"servfail.com."}


class QueryLog:
    """The (name, type) of every query received, names without the final dot."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, name: str, qtype: str) -> None:
        with self._lock:
            self.queries.append((name, qtype))

    def count(self, name: str | None = None) -> int:
        """Queries received, for one name (any type) or in all."""
        with self._lock:
            return sum(1 for asked, _ in self.queries if name is None or asked.rstrip(".") == name.rstrip("."))


class ZoneResolver(BaseResolver, QueryLog):
    def __init__(self, zone: dict[str, list[tuple[str, str]]], *, ttl: int = 300) -> None:
        QueryLog.__init__(self)
        self.zone = zone
        self.ttl = ttl
        # A broken or captive resolver: every name, even one that exists, is NXDOMAIN.
        self.nxdomain_for_everything = False

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        self.record(name, qtype)
        if self.nxdomain_for_everything:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
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
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(exchange, int(preference)), ttl=self.ttl))
            elif rtype == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=self.ttl))
            elif rtype == "AAAA":
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=self.ttl))
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackDNS:
    """Start with `start()`; `nameserver` is the VERIFY_DNS_NAMESERVERS value."""

    def __init__(self, zone: dict[str, list[tuple[str, str]]] | None = None, *, ttl: int = 300) -> None:
        self.resolver = ZoneResolver(dict(zone or DEFAULT_ZONE), ttl=ttl)
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


class SilentDNS(QueryLog):
    """A nameserver that reads every query and never answers (a firewall that drops replies,
    a resolver that hangs): each lookup through it costs the caller's whole timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1@{self.port}"

    def _read(self) -> None:
        while not self._stopped.is_set():
            try:
                data, _ = self.socket.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                question = DNSRecord.parse(data).q
            except DNSError:
                continue
            self.record(str(question.qname).lower(), QTYPE[question.qtype])

    def start(self) -> "SilentDNS":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.socket.close()


if __name__ == "__main__":
    dns = LoopbackDNS().start()
    print(dns.nameserver)
    threading.Event().wait()
