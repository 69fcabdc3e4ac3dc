"""Misbehaving servers on 127.0.0.1 for the hostile-input tests: each starts on a free port,
counts what it receives, and at `close` stops listening and ends every connection it holds.

The pauses inside the behaviours are how these servers misbehave (a byte every so often),
never a way for a test to wait for something.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message

from tests.servers import bind_udp_tcp

Behaviour = Callable[["Connection"], Awaitable[None]]
"""What a TCP server does with one accepted connection."""

CHUNK = b"x" * 4096


@dataclass
class Counters:
    connections: int = 0
    """TCP connections accepted."""
    bytes_sent: int = 0
    """Bytes written to all TCP connections."""
    udp_queries: int = 0
    tcp_queries: int = 0


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    counters: Counters

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.counters.bytes_sent += len(data)

    async def read_request_head(self) -> None:
        """Read an HTTP request's head, so the client is waiting for an answer."""
        await self.reader.readuntil(b"\r\n\r\n")


class TcpServer:
    """A TCP listener running ``behaviour`` on each connection until it ends or `close`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.counters = Counters()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/healthz") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counters.connections += 1
        try:
            await self.behaviour(Connection(reader, writer, self.counters))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what a probe does at its deadline
        except asyncio.CancelledError:
            # By close(), and the task ends here. Not re-raised: Python 3.11's streams would
            # log a cancelled connection task as an error ("Exception in callback").
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)


# --- TCP behaviours ---------------------------------------------------------------------


async def silent(conn: Connection) -> None:
    """Accept, read whatever comes, never answer; hold the connection until the client goes."""
    while await conn.reader.read(4096):
        pass


async def endless_body(conn: Connection) -> None:
    """A 200 with its headers at once, then a body that never ends, as fast as it is read."""
    await conn.read_request_head()
    await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    while True:
        await conn.send(CHUNK)


def slowloris(pause: float) -> Behaviour:
    """A complete, valid 200 answer sent one byte every ``pause`` seconds."""
    async def behaviour(conn: Connection) -> None:
        await conn.read_request_head()
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        for byte in answer:
            await conn.send(bytes([byte]))
            await asyncio.sleep(pause)  # the misbehaviour itself, not synchronisation
    return behaviour


def slow_endless_body(pause: float) -> Behaviour:
    """Headers at once, then an endless body trickling one byte every ``pause`` seconds."""
    async def behaviour(conn: Connection) -> None:
        await conn.read_request_head()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        while True:
            await conn.send(b"x")
            await asyncio.sleep(pause)  # the misbehaviour itself, not synchronisation
    return behaviour


async def endless_headers(conn: Connection) -> None:
    """A status line, then header lines that never end."""
    await conn.read_request_head()
    await conn.send(b"HTTP/1.1 200 OK\r\n")
    while True:
        await conn.send(b"X-Padding: " + b"y" * 64 + b"\r\n")


# --- DNS ----------------------------------------------------------------------------------

DnsReply = Callable[[bytes], bytes | None]
"""From the raw query to the raw reply (None: no reply)."""


def garbage(_query: bytes) -> bytes:
    """Bytes that are no DNS message at all."""
    return b"\x13\x37not dns at all\xff\x00" * 4


def truncated(query: bytes) -> bytes:
    """A well-formed, matching, empty reply with TC set: "ask again over TCP"."""
    response = dns.message.make_response(dns.message.from_wire(query))
    response.flags |= dns.flags.TC
    return response.to_wire()


def same_id_garbage(query: bytes) -> bytes:
    """The query's id and a header claiming answers that are not there."""
    return query[:2] + b"\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00" + b"\xc0" * 7


TcpDns = Callable[["DnsConnection"], Awaitable[None]]


@dataclass
class DnsConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: DnsServer

    async def query(self) -> bytes:
        (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        wire = await self.reader.readexactly(length)
        self.server.counters.tcp_queries += 1
        return wire

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.server.counters.bytes_sent += len(data)

    async def reply(self, wire: bytes) -> None:
        await self.send(struct.pack("!H", len(wire)) + wire)


async def tcp_truncated_forever(conn: DnsConnection) -> None:
    """Over TCP too, every query gets a TC reply, for as long as the client keeps asking."""
    while True:
        await conn.reply(truncated(await conn.query()))


async def tcp_garbage(conn: DnsConnection) -> None:
    """Over TCP, a length-prefixed message of garbage for every query."""
    while True:
        await conn.query()
        await conn.reply(garbage(b""))


async def tcp_endless_stream(conn: DnsConnection) -> None:
    """Over TCP, a length prefix promising the largest message, then garbage without end."""
    await conn.query()
    await conn.send(b"\xff\xff")
    while True:
        await conn.send(CHUNK)


async def tcp_silent(conn: DnsConnection) -> None:
    """Over TCP, read the query and never answer."""
    await conn.query()
    while await conn.reader.read(4096):
        pass


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.server.counters.udp_queries += 1
        try:
            reply = self.server.udp_reply(data)
        except Exception as exc:
            self.server.errors.append(exc)  # close() re-raises: the test must fail
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@dataclass
class DnsServer:
    """A DNS server on UDP and TCP of one port, misbehaving on each as told."""

    udp_reply: DnsReply
    tcp: TcpDns = tcp_silent
    counters: Counters = field(default_factory=Counters)
    errors: list[Exception] = field(default_factory=list)
    port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._udp, self._tcp, self.port = await bind_udp_tcp(lambda: _Udp(self),
                                                             self._serve_tcp)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counters.connections += 1
        try:
            await self.tcp(DnsConnection(reader, writer, self))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up
        except asyncio.CancelledError:
            # By close(), and the task ends here. Not re-raised: Python 3.11's streams would
            # log a cancelled connection task as an error ("Exception in callback").
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self.errors:
            msg = "the DNS server failed while serving"
            raise ExceptionGroup(msg, self.errors)


async def endless_interim(conn: Connection) -> None:
    """``100 Continue`` after ``100 Continue``, as fast as read, never a final status."""
    await conn.read_request_head()
    while True:
        await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 64)


async def endless_chunk_size(conn: Connection) -> None:
    """A chunked 200 whose first chunk-size line never ends."""
    await conn.read_request_head()
    await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        await conn.send(b"f" * 4096)
