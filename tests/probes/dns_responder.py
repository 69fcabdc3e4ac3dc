"""A tiny DNS server on UDP and TCP of one port whose misbehaviour each test chooses.

It answers every question with ``address`` unless told otherwise through ``udp_reply``:
a function from the parsed query to the raw bytes sent back over UDP (None: no reply).
TCP always answers properly, as a server does after truncating over UDP.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from tests.servers import bind_udp_tcp

UdpReply = Callable[[dns.message.Message], bytes | None]


def answer(query: dns.message.Message, address: str) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    response.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A", address))
    return response


def truncated(query: dns.message.Message) -> bytes:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.TC
    return response.to_wire()


def with_rcode(rcode: dns.rcode.Rcode) -> UdpReply:
    def reply(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        return response.to_wire()
    return reply


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            query = dns.message.from_wire(data)
            self.responder.udp_queries.append(query)
            reply = self.responder.udp_reply(query)
        except Exception as exc:
            # asyncio would only log it; the test must fail, so close() re-raises it.
            self.responder.errors.append(exc)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class Responder:
    def __init__(self, address: str = "10.7.7.7") -> None:
        self.address = address
        self.udp_reply: UdpReply = lambda query: answer(query, address).to_wire()
        self.udp_queries: list[dns.message.Message] = []
        self.tcp_queries: list[dns.message.Message] = []
        self.port = 0
        self.errors: list[Exception] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._udp, self._tcp, self.port = await bind_udp_tcp(lambda: _Udp(self),
                                                             self._serve_tcp)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            query = dns.message.from_wire(await reader.readexactly(length))
            self.tcp_queries.append(query)
            wire = answer(query, self.address).to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()
            self._handlers.discard(task)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self.errors:
            msg = "the DNS responder failed while serving"
            raise ExceptionGroup(msg, self.errors)
