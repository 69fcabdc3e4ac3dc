"""DNS probe: one query sent straight to the cluster's own server, over TCP again if truncated.

No resolver sits in between: no cache, no /etc/resolv.conf, no search domains, so
the answer is what that one server says now.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.query
import dns.rcode
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from failover.config import DnsCheck, Job
from failover.config.addresses import IP as IpAddress
from failover.model import FailureClass, ProbeResult
from failover.probes.base import Permit, ProbeContext, failed, passed

_EDNS_PAYLOAD = 1232
"""UDP payload size advertised: the DNS Flag Day 2020 value, safe from IP fragmentation."""


_RCODE_FAILURES: dict[dns.rcode.Rcode, FailureClass] = {
    dns.rcode.NXDOMAIN: "nxdomain",
    dns.rcode.SERVFAIL: "servfail",
    dns.rcode.REFUSED: "refused",
}
"""Rcodes with a class of their own; any other non-NOERROR rcode is a ``dns_error``."""


async def probe_dns(job: Job, ctx: ProbeContext) -> ProbeResult:
    spec = job.spec
    if not isinstance(spec, DnsCheck) or job.name is None:
        msg = f"not a DNS job: {job.label}"
        raise TypeError(msg)
    # make_query draws a random id and sets RD; the name is made absolute, so no search list.
    query = dns.message.make_query(job.name, spec.qtype, use_edns=0, payload=_EDNS_PAYLOAD)
    port = job.endpoint.port
    try:
        server = await _server_address(job.endpoint.host)
        reply, via = await _exchange(query, server, port, ctx.permit)
    except TimeoutError:
        raise  # an OSError subclass, but run_probe owns the timeout verdict
    except ConnectionRefusedError:
        return failed("network_error", "connection refused (nothing listens on the port)")
    except EOFError:
        return failed("network_error", "connection closed before a full reply")
    except dns.query.BadResponse:
        return failed("dns_error", "reply does not match the query (id or question differ)")
    except dns.exception.DNSException as exc:
        return failed("dns_error", f"malformed reply: {type(exc).__name__}: {exc}")
    except OSError as exc:
        return failed("network_error", f"{type(exc).__name__}: {exc}")
    return _judge(reply, spec, via)


async def _server_address(host: str) -> str:
    """The server's IP address; a host name is looked up once per probe, never cached."""
    if dns.inet.is_address(host):
        return host
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return str(infos[0][4][0])


async def _exchange(query: dns.message.Message, server: str, port: int,
                    permit: Permit) -> tuple[dns.message.Message, str]:
    """The reply over UDP or, when that is truncated, over TCP; and which one it was."""
    await permit()
    try:
        return await _udp(query, server, port), "udp"
    except dns.message.Truncated as exc:
        # Raised before dnspython compares the reply with the query, so compare here:
        # a stray truncated datagram must not earn a second request.
        # dnspython leaves Truncated.message() unannotated.
        partial: dns.message.Message = exc.message()  # type: ignore[no-untyped-call]
        if not query.is_response(partial):
            raise dns.query.BadResponse from exc
    await permit()
    return await dns.asyncquery.tcp(query, server, port=port), "tcp"


async def _udp(query: dns.message.Message, server: str, port: int) -> dns.message.Message:
    backend = dns.asyncbackend.get_backend("asyncio")
    family = dns.inet.af_for_address(server)
    # A connected socket hears ICMP port-unreachable, so a server whose process is gone
    # fails at once instead of at the deadline; the kernel also drops datagrams from
    # any other source address.
    # dnspython leaves Backend.make_socket() unannotated.
    sock = await backend.make_socket(  # type: ignore[no-untyped-call]
        family, socket.SOCK_DGRAM, 0, None, (server, port))
    async with sock:
        # The default (ignore_errors=False) makes a reply that does not parse, or whose
        # id or question differ from the query, an error rather than something to wait past.
        # raise_on_truncation: a reply cut off mid-record is still a truncation, not garbage.
        return await dns.asyncquery.udp(query, server, port=port, sock=sock,
                                        raise_on_truncation=True)


def _judge(reply: dns.message.Message, spec: DnsCheck, via: str) -> ProbeResult:
    if via == "tcp" and reply.flags & dns.flags.TC:
        # Truncated even over TCP (a broken server, or an answer over 64 KiB): what came is
        # partial, and judged as is it read as no_answer or unexpected_answer, blaming the
        # records. There is no third transport to retry on.
        return failed("dns_error", "reply truncated even over TCP")
    rcode = reply.rcode()
    if rcode != dns.rcode.NOERROR:
        return failed(_RCODE_FAILURES.get(rcode, "dns_error"), f"rcode {dns.rcode.to_text(rcode)}")
    try:
        got = _addresses(reply)
    except dns.exception.DNSException as exc:
        return failed("dns_error", f"unusable answer: {type(exc).__name__}: {exc}")
    if not got:
        return failed("no_answer", f"NOERROR but no {spec.qtype} records")
    shown = ", ".join(str(address) for address in got)
    expected = spec.expect
    if any(address not in got for address in expected):
        return failed("unexpected_answer",
                      f"got {shown}; expected {', '.join(str(a) for a in expected)}")
    return passed(shown if via == "udp" else f"{shown} (over {via})")


def _addresses(reply: dns.message.Message) -> list[IpAddress]:
    """The addresses answering the question, following any CNAME chain in the answer."""
    if not isinstance(reply, dns.message.QueryMessage):
        raise dns.message.NotQueryResponse
    answer = reply.resolve_chaining().answer
    if answer is None:
        return []
    found = {
        ipaddress.ip_address(rdata.address)
        for rdata in answer
        if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA)
    }
    return sorted(found, key=lambda address: (address.version, address))
