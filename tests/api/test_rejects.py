"""Requests a listener cannot parse: every one counted, one log line a minute, no traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from failover.api.server import Listener

GARBAGE = [
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 1, id="bad-header"),
    pytest.param(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", 1, id="line-too-long"),
    pytest.param(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 1, id="bad-length"),
    # Not HTTP at all (a TLS hello on a plain port): aiohttp logs it at debug only.
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 / HTTP/1.1\r\n\r\n", 0,
                 id="not-http"),
]


async def send(address: str, payload: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(("payload", "logged"), GARBAGE)
async def test_a_flood_of_unparsable_requests_is_counted_and_logged_once(
        payload: bytes, logged: int, caplog: pytest.LogCaptureFixture) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    count = 0

    def rejected() -> None:
        nonlocal count
        count += 1

    listener = Listener("status", app, "127.0.0.1:0", rejected)
    task = asyncio.create_task(listener.serve())
    await listener.ready.wait()
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(200):
                status_line = (await send(listener.bound[0], payload)).split(b"\r\n", 1)[0]
                assert status_line.split()[1].startswith(b"4"), status_line
            # An honest request still gets through, and is not counted.
            answer = await send(listener.bound[0], b"GET / HTTP/1.1\r\nHost: x\r\n"
                                                   b"Connection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert count == 200
    lines = [r for r in caplog.records if r.name.startswith("failover.api.server.")]
    assert len(lines) == logged
    if not lines:
        return
    [line] = lines
    assert line.levelno == logging.WARNING
    assert line.exc_info is None
    message = line.getMessage()
    assert message.startswith(
        "status listener refused a request it could not parse from 127.0.0.1: ")
    assert "\n" not in message  # aiohttp's own text echoes the bad bytes over lines
