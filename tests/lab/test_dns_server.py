"""The lab's DNS server over TCP: dnspython's framing both ways, several queries on one
connection, a query in pieces, and a bad query or a client gone mid-message ending the
connection cleanly."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.asyncbackend
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from failover.lab.dns_server import DnsServer
from failover.lab.faults import Counters, Faults

NAME = "api.default.svc.cluster.local."
ANSWER = "10.0.0.1"


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    running = DnsServer("lab-t", ANSWER, "10.0.0.2", Faults(), Counters())
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
