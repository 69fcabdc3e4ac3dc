"""The lab's DNS server over TCP: dnspython's framing both ways, several queries on one
connection, a query in pieces, and a bad query or a client gone mid-message ending the
connection cleanly. Its heartbeat TXT record, and the ``stale`` fault that freezes it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.asyncbackend
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdtypes.ANY.TXT
import pytest

from failover.lab.dns_server import HEARTBEAT, DnsServer
from failover.lab.faults import Counters, DnsFault, Faults
from tests.lab.clock import FakeClock

NAME = "api.default.svc.cluster.local."
ANSWER = "10.0.0.1"
NOW = 1796165399.75
"""A wall-clock time with a fraction, which the heartbeat must drop, not round."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def server(clock: FakeClock) -> AsyncIterator[DnsServer]:
    running = DnsServer("lab-t", ANSWER, "10.0.0.2", Faults(), Counters(), clock)
    await running.start("127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.close()


def addresses(reply: dns.message.Message) -> list[str]:
    return [rdata.address for rrset in reply.answer for rdata in rrset]


async def test_several_queries_on_one_connection_are_each_answered(server: DnsServer) -> None:
    """RFC 7766: three queries on one TCP connection get three replies, in order, counted."""
    backend = dns.asyncbackend.get_backend("asyncio")
    sock = await backend.make_socket(socket.AF_INET, socket.SOCK_STREAM, 0, None,
                                     ("127.0.0.1", server.port))
    async with sock:
        for rdtype, want in (("A", [ANSWER]), ("AAAA", []), ("A", [ANSWER])):
            query = dns.message.make_query(NAME, rdtype)
            reply = await dns.asyncquery.tcp(query, "127.0.0.1", sock=sock)
            assert reply.rcode() == dns.rcode.NOERROR
            assert addresses(reply) == want
    assert server.counters.dns_tcp == 3
    assert server.counters.dns_udp == 0


async def test_a_query_in_pieces_is_read_whole(server: DnsServer) -> None:
    """The length prefix and the message written separately, the message a byte at a time,
    still make one query and one framed reply."""
    query = dns.message.make_query(NAME, "A")
    framed = query.to_wire(prepend_length=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for piece in [framed[:1], framed[1:2], *(framed[i:i + 1] for i in range(2, len(framed)))]:
            writer.write(piece)
            await writer.drain()
        length = int.from_bytes(await reader.readexactly(2), "big")
        reply = dns.message.from_wire(await reader.readexactly(length))
    finally:
        writer.close()
        await writer.wait_closed()
    assert query.is_response(reply)
    assert addresses(reply) == [ANSWER]


async def test_an_unparsable_query_closes_the_connection(server: DnsServer) -> None:
    """A framed message that is not DNS is counted and answered by closing, not a reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"\x00\x03abc")
        await writer.drain()
        assert await reader.read() == b""
    finally:
        writer.close()
        await writer.wait_closed()
    assert server.counters.dns_tcp == 1


async def test_a_client_gone_mid_message_ends_the_connection(server: DnsServer) -> None:
    """A client that sends half a message and stops sending gets no reply and no count: the
    server closes its side at once, so its connection task has ended by itself."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"\x00\x40half")  # announces 64 bytes, sends 4
        writer.write_eof()  # half-close: what we read next is the server's own doing
        assert await reader.read() == b""
    finally:
        writer.close()
        await writer.wait_closed()
    assert server.counters.dns_tcp == 0


async def test_truncate_fault_answers_in_full_over_tcp(server: DnsServer) -> None:
    """``truncate`` sets TC over UDP only: the TCP reply, framed by dnspython, has the answer."""
    server.faults.dns = "truncate"
    query = dns.message.make_query(NAME, "A")
    udp = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=5)
    assert udp.flags & dns.flags.TC
    tcp = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=5)
    assert not tcp.flags & dns.flags.TC
    assert addresses(tcp) == [ANSWER]


async def query_udp(server: DnsServer, name: str, rdtype: str) -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), "127.0.0.1",
                                    port=server.port, timeout=5)


async def heartbeat(server: DnsServer) -> int:
    """The heartbeat over UDP, checked to be one TXT record of one string: an integer."""
    reply = await query_udp(server, HEARTBEAT, "TXT")
    assert reply.rcode() == dns.rcode.NOERROR
    [rrset] = reply.answer
    [rdata] = rrset
    assert isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
    [text] = rdata.strings
    assert text.isdigit(), text
    return int(text)


async def set_fault(server: DnsServer, fault: DnsFault) -> None:
    server.faults.dns = fault
    server.apply_faults()  # as the lab does when it sets a fault


async def test_heartbeat_is_the_clock_in_whole_seconds(server: DnsServer,
                                                       clock: FakeClock) -> None:
    """The heartbeat TXT holds the clock at the query, truncated, and moves on with it."""
    assert await heartbeat(server) == 1796165399
    clock.advance(0.25)
    assert await heartbeat(server) == 1796165400
    clock.advance(3600)
    assert await heartbeat(server) == 1796169000


async def test_heartbeat_name_answers_a_and_nothing_else(server: DnsServer) -> None:
    """The heartbeat name still has its A record, and no data of other types; other names
    have no TXT."""
    assert addresses(await query_udp(server, HEARTBEAT, "A")) == [ANSWER]
    for name, rdtype in ((HEARTBEAT, "AAAA"), (NAME, "TXT")):
        reply = await query_udp(server, name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer == []


async def test_stale_answers_as_ok_but_freezes_the_heartbeat(server: DnsServer,
                                                             clock: FakeClock) -> None:
    """Under ``stale`` A queries are answered as ever while the heartbeat stays at the moment
    the fault was set, however far the clock runs; back to ``ok`` it catches up."""
    await set_fault(server, "stale")
    frozen = int(clock.now)
    clock.advance(120)
    reply = await query_udp(server, NAME, "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) == [ANSWER]
    assert await heartbeat(server) == frozen
    clock.advance(600)
    assert await heartbeat(server) == frozen
    await set_fault(server, "ok")
    assert await heartbeat(server) == int(clock.now)
    clock.advance(1)
    assert await heartbeat(server) == int(clock.now)


async def test_stale_again_keeps_the_first_frozen_moment(server: DnsServer,
                                                         clock: FakeClock) -> None:
    """Setting ``stale`` while stale does not move the frozen moment on; a fault in between
    thaws it, so the next ``stale`` freezes anew."""
    await set_fault(server, "stale")
    first = int(clock.now)
    clock.advance(60)
    await set_fault(server, "stale")
    clock.advance(60)
    assert await heartbeat(server) == first
    await set_fault(server, "servfail")
    await set_fault(server, "stale")
    assert await heartbeat(server) == first + 120


async def test_stale_set_on_faults_alone_freezes_at_the_next_query(server: DnsServer,
                                                                   clock: FakeClock) -> None:
    """A fault written to `Faults` without telling the server freezes when the server first
    sees it, rather than not at all."""
    server.faults.dns = "stale"
    frozen = await heartbeat(server)
    clock.advance(60)
    assert await heartbeat(server) == frozen == int(NOW)


@pytest.mark.parametrize(("fault", "rcode"), [
    ("servfail", dns.rcode.SERVFAIL),
    ("nxdomain", dns.rcode.NXDOMAIN),
    ("refused", dns.rcode.REFUSED),
])
async def test_rcode_faults_apply_to_the_heartbeat(server: DnsServer, fault: DnsFault,
                                                   rcode: dns.rcode.Rcode) -> None:
    """The rcode faults come before the record type: the heartbeat gets them as A does."""
    await set_fault(server, fault)
    for rdtype in ("TXT", "A"):
        reply = await query_udp(server, HEARTBEAT, rdtype)
        assert reply.rcode() == rcode
        assert reply.answer == []


async def test_truncate_fault_gives_the_heartbeat_over_tcp_only(server: DnsServer) -> None:
    """``truncate`` sets TC on the heartbeat over UDP as on A; TCP has the record."""
    await set_fault(server, "truncate")
    query = dns.message.make_query(HEARTBEAT, "TXT")
    udp = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=5)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=5)
    assert [rdata.to_text() for rrset in tcp.answer for rdata in rrset] == ['"1796165399"']
