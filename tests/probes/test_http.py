"""The HTTP probe against a real aiohttp server on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.probes.conftest import Prober, http_job

READY_PAGE = b"<html>status: READY</html>"


@dataclass
class Server:
    runner: web.AppRunner
    site: web.TCPSite
    port: int
    release: asyncio.Event

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def make_app(release: asyncio.Event) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=READY_PAGE)

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/ok"})

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=READY_PAGE)

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        # The probe hangs up after its 64 KiB; the reset that follows is expected.
        with contextlib.suppress(ConnectionResetError):
            while not release.is_set():
                await response.write(b"x" * 4096)
                await asyncio.sleep(0)  # let the loop breathe between writes
        return response

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 70_000 + b"READY")

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(READY_PAGE), headers={"Content-Encoding": "gzip"})

    async def echo_accept_encoding(request: web.Request) -> web.Response:
        return web.Response(text=f"accept-encoding={request.headers.get('Accept-Encoding')}")

    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="here is a cookie")
        response.set_cookie("session", "1")
        return response

    async def no_cookie(request: web.Request) -> web.Response:
        return web.Response(status=409 if "Cookie" in request.headers else 200)

    app = web.Application()
    app.add_routes([
        web.get("/ok", ok), web.get("/fail", fail), web.get("/redirect", redirect),
        web.get("/slow", slow), web.get("/endless", endless), web.get("/big", big),
        web.get("/gzip", compressed), web.get("/echo", echo_accept_encoding),
        web.get("/set-cookie", set_cookie), web.get("/no-cookie", no_cookie),
    ])
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    release = asyncio.Event()
    runner = web.AppRunner(make_app(release))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(runner, site, port, release)
    finally:
        release.set()  # lets held handlers finish, so cleanup does not wait for them
        await runner.cleanup()


async def test_expected_status_passes(server: Server, probe: Prober) -> None:
    """A 200 for a check expecting 200 passes, after exactly one request."""
    result = await probe(http_job(server.url("/ok")))
    assert result.ok, result
    assert result.detail == "status 200"
    assert probe.permit.calls == 1


async def test_other_status_is_bad_status(server: Server, probe: Prober) -> None:
    """A 500 where 200 is expected is bad_status naming the status."""
    result = await probe(http_job(server.url("/fail")))
    assert (result.ok, result.failure_class) == (False, "bad_status")
    assert result.detail == "status 500, expected 200"


async def test_redirect_is_not_followed(server: Server, probe: Prober) -> None:
    """A 302 is judged as a 302: bad when 200 is expected, fine when 302 is."""
    bad = await probe(http_job(server.url("/redirect")))
    assert (bad.ok, bad.failure_class) == (False, "bad_status")
    assert bad.detail == "status 302, expected 200"
    good = await probe(http_job(server.url("/redirect"), expect_status=302))
    assert good.ok


async def test_body_substring_passes(server: Server, probe: Prober) -> None:
    """The expected substring in the body passes."""
    result = await probe(http_job(server.url("/ok"), expect_body="READY"))
    assert result.ok, result


async def test_body_without_substring_is_bad_body(server: Server, probe: Prober) -> None:
    """A body lacking the expected substring is bad_body."""
    result = await probe(http_job(server.url("/ok"), expect_body="DRAINING"))
    assert (result.ok, result.failure_class) == (False, "bad_body")
    assert "'DRAINING'" in result.detail


async def test_only_the_first_64_kib_are_searched(server: Server, probe: Prober) -> None:
    """A substring beyond the first 64 KiB of the body is not found."""
    result = await probe(http_job(server.url("/big"), expect_body="READY"))
    assert (result.ok, result.failure_class) == (False, "bad_body")
    assert "first 65536 bytes" in result.detail


async def test_endless_body_gives_bad_body_before_the_deadline(
        server: Server, probe: Prober) -> None:
    """An endless body without the substring fails as bad_body long before the deadline."""
    result = await probe(http_job(server.url("/endless"), expect_body="READY"), within=5)
    assert (result.ok, result.failure_class) == (False, "bad_body")
    assert result.latency < 2


async def test_slow_handler_times_out_at_the_deadline(server: Server, probe: Prober) -> None:
    """A handler that does not answer yields timeout at the deadline, not later."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(http_job(server.url("/slow")), within=0.3)
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert 0.3 <= loop.time() - started < 0.45


async def test_closed_port_is_refused(probe: Prober) -> None:
    """Nothing listening on the port is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await probe(http_job(f"http://127.0.0.1:{port}/ok"))
    assert (result.ok, result.failure_class) == (False, "refused")


async def test_stopped_server_is_seen_after_a_success(server: Server, probe: Prober) -> None:
    """Once the server stops listening, the next probe fails: no kept-alive connection hides it."""
    assert (await probe(http_job(server.url("/ok")))).ok
    await server.site.stop()  # stops listening; connections already open would live on
    result = await probe(http_job(server.url("/ok")))
    assert (result.ok, result.failure_class) == (False, "refused")


async def test_bodies_are_requested_and_read_uncompressed(server: Server, probe: Prober) -> None:
    """Probes ask for identity encoding and never decompress what a server sends anyway."""
    asked = await probe(http_job(server.url("/echo"), expect_body="accept-encoding=identity"))
    assert asked.ok, asked
    result = await probe(http_job(server.url("/gzip"), expect_body="READY"))
    assert (result.ok, result.failure_class) == (False, "bad_body")
    assert "gzip" in result.detail


async def test_cookies_are_not_kept_between_probes(server: Server, probe: Prober) -> None:
    """A cookie set by one response is not sent with the next probe."""
    assert (await probe(http_job(server.url("/set-cookie")))).ok
    result = await probe(http_job(server.url("/no-cookie")))
    assert result.ok, result


async def test_proxy_settings_in_the_environment_are_ignored(
        server: Server, probe: Prober, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY pointing at a dead port does not divert probes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    for variable in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{dead}")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    result = await probe(http_job(server.url("/ok")))
    assert result.ok, result


async def test_non_http_reply_is_a_protocol_error(probe: Prober) -> None:
    """A peer that answers with something other than HTTP is protocol_error."""
    handlers: set[asyncio.Task[None]] = set()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    listener = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await probe(http_job(f"http://127.0.0.1:{port}/ok"))
    finally:
        listener.close()
        await listener.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=5)
    assert (result.ok, result.failure_class) == (False, "protocol_error")


@contextlib.asynccontextmanager
async def scripted(reply: bytes) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads one request, writes ``reply`` as is and closes; it keeps the
    requests it read."""
    requests: list[bytes] = []
    handlers: set[asyncio.Task[None]] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        for piece in reply.split(b"|"):  # | marks where the server pauses between writes
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1], requests
    finally:
        listener.close()
        await listener.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=5)


async def test_request_is_a_plain_get_that_closes(probe: Prober) -> None:
    """Host with the port, no cookies, identity encoding, and Connection: close."""
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as (port, requests):
        assert (await probe(http_job(f"http://127.0.0.1:{port}/health?deep=1"))).ok
    head = requests[0].decode().split("\r\n")
    assert head[0] == "GET /health?deep=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in head
    assert "Connection: close" in head
    assert "Accept-Encoding: identity" in head
    assert not any(line.lower().startswith("cookie") for line in head)


@pytest.mark.parametrize("reply", [
    # Chunked, the needle split across two chunks and two writes.
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nstatu|\r\n9\r\ns: READY\r\n0\r\n\r\n",
    # No length: the body runs until the server closes.
    b"HTTP/1.1 200 OK\r\n\r\nstatus: |READY",
    # An interim response first.
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nstatus: READY",
], ids=["chunked", "until-close", "interim"])
async def test_body_is_found_however_it_is_framed(probe: Prober, reply: bytes) -> None:
    async with scripted(reply) as (port, _):
        result = await probe(http_job(f"http://127.0.0.1:{port}/", expect_body="status: READY"))
    assert result.ok, result


async def test_body_cut_short_of_its_length_is_not_a_pass(probe: Prober) -> None:
    """Content-Length promises more than comes: what came is searched, the needle absent."""
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstatus") as (port, _):
        result = await probe(http_job(f"http://127.0.0.1:{port}/", expect_body="READY"))
    assert (result.ok, result.failure_class) == (False, "network_error"), result


async def test_server_closing_before_any_reply_is_a_network_error(probe: Prober) -> None:
    async with scripted(b"") as (port, _):
        result = await probe(http_job(f"http://127.0.0.1:{port}/"))
    assert (result.ok, result.failure_class) == (False, "network_error"), result
    assert "closed before the reply was complete" in result.detail


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


async def test_tls_with_an_untrusted_certificate_is_a_network_error(
        probe: Prober, self_signed: tuple[Path, Path]) -> None:
    """HTTPS verifies the server's certificate against the system's CAs."""
    key, cert = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await probe(http_job(f"https://127.0.0.1:{port}/"))
    finally:
        listener.close()
        await listener.wait_closed()
    assert (result.ok, result.failure_class) == (False, "network_error"), result
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
