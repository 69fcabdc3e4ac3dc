"""One HTTP/1.1 GET on a connection of its own, read by llhttp (httptools) as it arrives.

A probe needs a status line, a few headers and at most the head of a body, on a fresh
connection every time (a kept-alive one can hide a server that stopped accepting). A general
client's pools, cookie jars, proxies, redirects and stream buffers are most of its cost per
request, and a probe uses none of them, so the request is written once per URL and the reply
is parsed in the protocol's own callbacks.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass, field
from typing import cast

import httptools
from yarl import URL

from failover import __version__

HEADER_LIMIT = 64 * 1024
"""Bytes a status line and headers may take: a server that never ends them is broken."""


class ProtocolError(Exception):
    """The reply is not HTTP/1.x as a client can read it."""


class Disconnected(Exception):
    """The server closed the connection before the reply was complete."""


@dataclass(frozen=True, slots=True)
class Request:
    host: str
    port: int
    tls: bool
    wire: bytes


@functools.lru_cache(maxsize=4096)
def request(url: str) -> Request:
    """The bytes of a GET for ``url``: Host as a client sends it, no cookies, no compression,
    and ``Connection: close`` since the connection is never used again."""
    parsed = URL(url)
    host = parsed.raw_host or ""
    port = parsed.explicit_port
    authority = host if ":" not in host else f"[{host}]"
    if port is not None:
        authority = f"{authority}:{port}"
    wire = (f"GET {parsed.raw_path_qs or '/'} HTTP/1.1\r\n"
            f"Host: {authority}\r\n"
            f"User-Agent: failover-probe/{__version__}\r\n"
            "Accept: */*\r\n"
            "Accept-Encoding: identity\r\n"
            "Connection: close\r\n\r\n").encode("latin-1")
    tls = parsed.scheme == "https"
    return Request(host, parsed.port or (443 if tls else 80), tls, wire)


@dataclass(slots=True)
class Reply:
    status: int = 0
    encoding: str = "identity"
    body: bytearray = field(default_factory=bytearray)


class _Exchange(asyncio.Protocol):
    """Sends the request, parses the reply; ``done`` resolves once enough of it is known."""

    def __init__(self, wire: bytes, needle: bytes | None, body_limit: int,
                 done: asyncio.Future[Reply]) -> None:
        self._wire = wire
        self._needle = needle
        self._body_limit = body_limit
        self._done = done
        self._parser: httptools.HttpResponseParser | None = None
        """Made on connecting: uvloop makes the protocol before it connects, and a refused
        connection never reaches connection_lost, where the parser is let go."""
        self._reply = Reply()
        self._header_bytes = 0
        self._headers_done = False
        self._until_close = True
        """No Content-Length and not chunked: the body ends when the connection does."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._parser = httptools.HttpResponseParser(self)
        # A stream transport (uvloop's does not subclass asyncio.Transport).
        cast("asyncio.WriteTransport", transport).write(self._wire)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._done.done():
            return
        if not self._headers_done:
            self._header_bytes += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"not a valid HTTP reply: {exc}"))
            return
        if not self._headers_done and self._header_bytes > HEADER_LIMIT:
            self._fail(ProtocolError(f"status line and headers longer than {HEADER_LIMIT} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            if self._headers_done and self._until_close:
                self._finish()  # the end of the connection is the end of the body
            elif exc is not None:
                self._fail(exc)
            else:
                self._fail(Disconnected("connection closed before the reply was complete"))
        # The parser holds this protocol's callbacks and this protocol holds the parser:
        # left alone, every probe's exchange would wait for the cyclic collector, whose
        # full passes then stop the loop for 100+ ms at a thousand clusters.
        self._parser = None

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-encoding":
            self._reply.encoding = value.decode("latin-1").strip()
        elif name in (b"content-length", b"transfer-encoding"):
            self._until_close = False

    def on_headers_complete(self) -> None:
        # Only ever called from within feed_data, while the parser is there.
        status = cast("httptools.HttpResponseParser", self._parser).get_status_code()
        if 100 <= status < 200:  # interim responses: the real one follows
            self._until_close = True
            self._header_bytes = 0  # the limit is on each response's head
            return
        self._reply.status = status
        self._headers_done = True
        if self._needle is None:
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self._done.done():
            return
        reply = self._reply
        reply.body += body[:self._body_limit - len(reply.body)]
        if (self._needle is not None and self._needle in reply.body) or (
                len(reply.body) >= self._body_limit):
            self._finish()

    def on_message_complete(self) -> None:
        if self._headers_done:
            self._finish()

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(self._reply)

    def _fail(self, exc: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(exc)


_TLS = ssl.create_default_context()
"""Certificates verified against the system's CAs, as any client would."""


async def exchange(url: str, needle: bytes | None, body_limit: int) -> Reply:
    """GET ``url`` on a new connection; the reply once its status is known and, when
    ``needle`` is given, once the needle is seen, the body ends or ``body_limit`` bytes came.

    Raises OSError (connect), ssl.SSLError, ProtocolError or Disconnected; the caller's
    deadline cancels it, and the connection is closed whatever happens.
    """
    wanted = request(url)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Reply] = loop.create_future()
    transport, _ = await loop.create_connection(
        functools.partial(_Exchange, wanted.wire, needle, body_limit, done), wanted.host,
        wanted.port,
        ssl=_TLS if wanted.tls else None,
        server_hostname=wanted.host if wanted.tls else None)
    try:
        return await done
    finally:
        transport.close()
        # A failure's traceback holds this frame, and the frame the future that holds the
        # failure: a cycle per failed probe unless the future goes.
        del done
