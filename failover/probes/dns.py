"""DNS probe: one query sent straight to the cluster's own server, over TCP again if truncated.

No resolver sits in between: no cache, no /etc/resolv.conf, no search domains, so
the answer is what that one server says now.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import secrets
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.query
import dns.rcode
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from failover.config import DnsCheck, Job
from failover.config.addresses import IP as IpAddress
from failover.config.probing import Freshness
from failover.model import FailureClass, ProbeResult
from failover.probes import dns_wire
from failover.probes.base import Permit, ProbeContext, failed, passed

_RCODE_FAILURES: dict[dns.rcode.Rcode, FailureClass] = {
    dns.rcode.NXDOMAIN: "nxdomain",
    dns.rcode.SERVFAIL: "servfail",
    dns.rcode.REFUSED: "refused",
}
"""Rcodes with a class of their own; any other non-NOERROR rcode is a ``dns_error``."""

T = TypeVar("T")


async def probe_dns(job: Job, ctx: ProbeContext) -> ProbeResult:
    spec = job.spec
    if not isinstance(spec, DnsCheck) or job.name is None:
        msg = f"not a DNS job: {job.label}"
        raise TypeError(msg)
    host, port = job.endpoint.host, job.endpoint.port
    try:
        asking = (_heartbeat(job.name, spec.freshness, host, port, ctx.permit)
                  if job.heartbeat and spec.freshness is not None
                  else _ask(job.name, spec, host, port, ctx.permit))
        return await asking
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


async def _ask(name: str, spec: DnsCheck, host: str, port: int, permit: Permit) -> ProbeResult:
    # A fresh random id for each query; RD set; the name absolute, so no search list.
    asked = dns_wire.query(name, spec.qtype)
    qid = secrets.randbits(16)
    server = await _server_address(host)
    await permit()
    reply = await _udp(asked.with_id(qid), server, port)
    plain = dns_wire.plain_addresses(reply, qid, asked)
    if plain is not None:
        return _verdict(plain, spec, "udp")
    message, via = await _read(reply, asked.message(qid), server, port, permit)
    return _judge(message, spec, via)


async def _heartbeat(name: str, freshness: Freshness, host: str, port: int,
                     permit: Permit) -> ProbeResult:
    asked = dns_wire.query(name, "TXT")
    qid = secrets.randbits(16)
    server = await _server_address(host)
    await permit()
    reply = await _udp(asked.with_id(qid), server, port)
    message, via = await _read(reply, asked.message(qid), server, port, permit)
    return _beat_verdict(message, freshness, via, time.time())


def _beat_verdict(reply: dns.message.Message, freshness: Freshness, via: str,
                  now: float) -> ProbeResult:
    texts = _records(reply, via, _texts)
    if isinstance(texts, ProbeResult):
        return texts
    if not texts:
        return failed("no_answer", "NOERROR but no TXT records: no heartbeat")
    stamps = [stamp for stamp in map(_timestamp, texts) if stamp is not None]
    if not stamps:
        return failed("stale", f"heartbeat is not a Unix timestamp: {texts[0][:64]!r}")
    return _age_verdict(now - max(stamps), freshness.max_age, via)  # the freshest record


def _age_verdict(age: float, limit: float, via: str) -> ProbeResult:
    if age > limit:
        return failed("stale", f"heartbeat {age:.0f}s old, over max_age {limit:g}s")
    if age < -limit:
        # A heartbeat frozen at a future time would pass for that long: not trusted.
        return failed("stale", f"heartbeat {-age:.0f}s in the future: the cluster's clock "
                      f"and ours differ by more than max_age {limit:g}s")
    shown = f"heartbeat {max(age, 0.0):.0f}s old"
    return passed(shown if via == "udp" else f"{shown} (over {via})")


def _timestamp(text: str) -> float | None:
    try:
        stamp = float(text)
    except ValueError:
        return None
    return stamp if math.isfinite(stamp) else None


def _texts(reply: dns.message.Message) -> list[str]:
    """The text of each TXT record answering the question (its strings joined), following
    any CNAME chain."""
    if not isinstance(reply, dns.message.QueryMessage):
        raise dns.message.NotQueryResponse
    answer = reply.resolve_chaining().answer
    if answer is None:
        return []
    return [b"".join(rdata.strings).decode("ascii", "replace").strip()
            for rdata in answer if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)]


async def _server_address(host: str) -> str:
    """The server's IP address; a host name is looked up once per probe, never cached."""
    if dns.inet.is_address(host):
        return host
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return str(infos[0][4][0])


async def _udp(wire: bytes, server: str, port: int) -> bytes:
    """One datagram sent and the first one back."""
    loop = asyncio.get_running_loop()
    # A connected socket hears ICMP port-unreachable, so a server whose process is gone
    # fails at once instead of at the deadline; the kernel also drops datagrams from
    # any other source address.
    with socket.socket(dns.inet.af_for_address(server), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((server, port))
        await loop.sock_sendall(sock, wire)
        return await loop.sock_recv(sock, 65535)


async def _read(reply: bytes, query: dns.message.Message, server: str, port: int,
                permit: Permit) -> tuple[dns.message.Message, str]:
    """A reply that is not the plain case, read by dnspython; over TCP again if truncated."""
    try:
        # raise_on_truncation: a reply cut off mid-record is still a truncation, not garbage.
        message = dns.message.from_wire(reply, raise_on_truncation=True)
    except dns.message.Truncated as exc:
        # Raised before the reply is compared with the query, so compare here:
        # a stray truncated datagram must not earn a second request.
        # dnspython leaves Truncated.message() unannotated.
        partial: dns.message.Message = exc.message()  # type: ignore[no-untyped-call]
        if not query.is_response(partial):
            raise dns.query.BadResponse from exc
        await permit()
        return await dns.asyncquery.tcp(query, server, port=port), "tcp"
    # A reply that does not parse, or whose id or question differ from the query, is an
    # error rather than something to wait past (as dnspython's own udp() does by default).
    if not query.is_response(message):
        raise dns.query.BadResponse
    return message, "udp"


def _unusable(reply: dns.message.Message, via: str) -> ProbeResult | None:
    """The failure of a reply whose records cannot be judged; None when they can."""
    if via == "tcp" and reply.flags & dns.flags.TC:
        # Truncated even over TCP (a broken server, or an answer over 64 KiB): what came is
        # partial, and judged as is it read as no_answer or unexpected_answer, blaming the
        # records. There is no third transport to retry on.
        return failed("dns_error", "reply truncated even over TCP")
    rcode = reply.rcode()
    if rcode != dns.rcode.NOERROR:
        return failed(_RCODE_FAILURES.get(rcode, "dns_error"), f"rcode {dns.rcode.to_text(rcode)}")
    return None


def _records(reply: dns.message.Message, via: str,
             read: Callable[[dns.message.Message], T]) -> T | ProbeResult:
    """What ``read`` finds in a reply that can be judged; else the reply's failure."""
    broken = _unusable(reply, via)
    if broken is not None:
        return broken
    try:
        return read(reply)
    except dns.exception.DNSException as exc:
        return failed("dns_error", f"unusable answer: {type(exc).__name__}: {exc}")


def _judge(reply: dns.message.Message, spec: DnsCheck, via: str) -> ProbeResult:
    got = _records(reply, via, _addresses)
    if isinstance(got, ProbeResult):
        return got
    return _verdict(got, spec, via)


def _verdict(got: list[IpAddress], spec: DnsCheck, via: str) -> ProbeResult:
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
