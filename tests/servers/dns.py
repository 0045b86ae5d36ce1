"""A real authoritative DNS server on loopback (UDP and TCP) whose records tests change.

``zone.set("_portal-challenge.example.org", "TXT", ["token"])`` publishes a
record; ``zone.fail(name, "timeout" | "servfail")`` makes a name misbehave.
Unknown names answer NXDOMAIN; a known name without the asked type answers
NOERROR with no records.
"""

from __future__ import annotations

import threading

from dnslib import CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.servers.smtp import free_port


def _name(name: str) -> str:
    return name.rstrip(".").lower() + "."


class Zone(BaseResolver):
    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.failures: dict[str, str] = {}
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    # -- what tests call ------------------------------------------------------
    def set(self, name: str, rtype: str, values: list[str]) -> None:
        with self.lock:
            self.records[(_name(name), rtype.upper())] = list(values)

    def remove(self, name: str, rtype: str) -> None:
        with self.lock:
            self.records.pop((_name(name), rtype.upper()), None)

    def fail(self, name: str, how: str | None) -> None:
        with self.lock:
            if how is None:
                self.failures.pop(_name(name), None)
            else:
                self.failures[_name(name)] = how

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.failures.clear()
            self.queries.clear()

    # -- the resolver interface ---------------------------------------------------
    def resolve(self, request, handler):
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        reply = request.reply()
        with self.lock:
            self.queries.append((qname, qtype))
            failure = self.failures.get(qname)
            values = list(self.records.get((qname, qtype), []))
            known = any(key[0] == qname for key in self.records)
        if failure == "timeout":
            return None  # dnslib sends nothing: the client times out
        if failure == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in values:
            reply.add_answer(RR(qname, QTYPE.reverse[qtype], ttl=60, rdata=_rdata(qtype, value)))
        return reply


def _rdata(qtype: str, value: str):
    if qtype == "TXT":
        # Long values are split into 255-byte strings, as real zones publish them.
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
        return TXT(chunks)
    if qtype == "MX":
        priority, _, host = value.partition(" ")
        return MX(host, int(priority))
    if qtype == "CNAME":
        return CNAME(value)
    if qtype == "A":
        return A(value)
    raise ValueError(f"the test DNS server does not serve {qtype}")


class DnsServer:
    def __init__(self):
        self.zone = Zone()
        self.port = free_port()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-data,-recv,-send", logf=lambda _text: None)
        self._servers = [DNSServer(self.zone, address="127.0.0.1", port=self.port, logger=quiet),
                         DNSServer(self.zone, address="127.0.0.1", port=self.port, tcp=True, logger=quiet)]
        for server in self._servers:
            # A "timeout" name makes the handler give up without answering; stay quiet about it.
            server.server.handle_error = lambda *_args: None

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "DnsServer":
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


def query(server: DnsServer, name: str, rtype: str):
    return DNSRecord.parse(DNSRecord.question(name, rtype).send("127.0.0.1", server.port, timeout=2))
