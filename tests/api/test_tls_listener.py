"""A listener with `listen.tls` speaks HTTPS only, TLS 1.2 and later, asks for client
certificates with a client CA, and takes a new certificate for new connections without
dropping the listener or the connections already open."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from failover.api.server import Listener
from failover.api.tls import ServingTls
from failover.config.tls import Certificate, Material, read_material
from tests.certs import Authority, Issued


def client(ca: Path | None, mine: Issued | None = None,
           max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=None if ca is None else str(ca))
    if mine is not None:
        context.load_cert_chain(mine.cert, mine.key)
    if max_version is not None:
        with warnings.catch_warnings():  # an old version is what this client is for
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = max_version
    return context


class Served:
    def __init__(self, listener: Listener, tls: ServingTls, shown: list[Certificate]) -> None:
        self.url = f"https://{listener.bound[0]}"
        self.tls = tls
        self.shown = shown


async def serve(material: Material) -> AsyncIterator[Served]:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/", hello)
    shown: list[Certificate] = []
    tls = ServingTls(material, shown.append)
    listener = Listener("status", app, "127.0.0.1:0", tls=tls)
    task = asyncio.create_task(listener.serve())
    await listener.ready.wait()
    try:
        yield Served(listener, tls, shown)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def served(ca: Authority) -> AsyncIterator[Served]:
    server = ca.issue("server")
    async for running in serve(read_material(server.cert, server.key, None)):
        yield running


@pytest.fixture
def operators(tmp_path: Path) -> Authority:
    """The CA that signs the operators' client certificates."""
    return Authority(tmp_path / "clients", "operators' CA")


@pytest.fixture
async def mutual(ca: Authority, operators: Authority) -> AsyncIterator[Served]:
    server = ca.issue("server")
    async for running in serve(read_material(server.cert, server.key, operators.cert)):
        yield running


async def get(url: str, context: ssl.SSLContext | bool) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as response:
        return response.status, await response.text()


class Connection:
    """One TLS connection, kept open across requests (HTTP/1.1 keep-alive)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        der = writer.get_extra_info("ssl_object").getpeercert(True)
        self.fingerprint = f"sha256:{hashlib.sha256(der).hexdigest()[:16]}"

    @classmethod
    async def open(cls, url: str, context: ssl.SSLContext) -> Connection:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port), ssl=context))

    async def get(self) -> bytes:
        self._writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await self._reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        return await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def test_https_with_the_right_ca_and_nothing_else(served: Served, ca: Authority) -> None:
    """The CA that signed it verifies it; another CA does not; its expiry is exported."""
    assert await get(served.url + "/", client(ca.cert)) == (200, "ok\n")
    other = Authority(ca.folder.parent / "other", "another CA")
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(served.url + "/", client(other.cert))
    assert [c.subject for c in served.shown] == ["CN=server"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_gets_the_page_with_the_ca(served: Served, ca: Authority) -> None:
    """What an operator types works: `curl --cacert`."""
    done = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "5", "--cacert", str(ca.cert), served.url + "/",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await done.communicate()
    assert done.returncode == 0, err
    assert out == b"ok\n"


async def test_plain_http_to_a_tls_listener_fails_cleanly_and_https_goes_on(
        served: Served, ca: Authority) -> None:
    """A plain request gets no answer, only a closed connection, and breaks nothing."""
    plain = served.url.replace("https://", "http://")
    with pytest.raises(aiohttp.ClientError):
        await get(plain + "/", False)
    assert await get(served.url + "/", client(ca.cert)) == (200, "ok\n")


async def test_tls_below_1_2_is_refused(served: Served, ca: Authority) -> None:
    with pytest.raises(aiohttp.ClientError):
        await get(served.url + "/", client(ca.cert, max_version=ssl.TLSVersion.TLSv1_1))


async def test_with_a_client_ca_only_its_certificates_get_in(
        mutual: Served, ca: Authority, operators: Authority, tmp_path: Path) -> None:
    """A certificate it signed gets in; none, and one from another CA, are both refused."""
    alice = operators.issue("alice", server=False, client=True)
    assert await get(mutual.url + "/", client(ca.cert, alice)) == (200, "ok\n")
    with pytest.raises(aiohttp.ClientError):
        await get(mutual.url + "/", client(ca.cert))
    stranger = Authority(tmp_path / "elsewhere", "someone else's CA").issue(
        "mallory", server=False, client=True)
    with pytest.raises(aiohttp.ClientError):
        await get(mutual.url + "/", client(ca.cert, stranger))


async def test_a_new_certificate_reaches_new_connections_while_an_old_one_finishes(
        ca: Authority) -> None:
    """After an update, a new connection sees the new certificate; a connection opened
    before goes on, with the old one, until it closes."""
    first, second = ca.issue("first"), ca.issue("second")
    async for running in serve(read_material(first.cert, first.key, None)):
        old = await Connection.open(running.url, client(ca.cert))
        assert await old.get() == b"ok\n"
        assert old.fingerprint == fingerprint(running)
        assert running.tls.update(read_material(second.cert, second.key, None))
        assert not running.tls.update(running.tls.material)  # the same: nothing to do
        new = await Connection.open(running.url, client(ca.cert))
        assert await new.get() == b"ok\n"
        assert new.fingerprint == fingerprint(running) != old.fingerprint
        assert await old.get() == b"ok\n"  # the same connection, still the first's
        for connection in (old, new):
            await connection.close()
        assert [c.subject for c in running.shown] == ["CN=first", "CN=second"]


def fingerprint(running: Served) -> str:
    certificate = running.tls.material.certificate
    assert certificate is not None
    return certificate.fingerprint


async def test_a_client_ca_changed_on_update_is_what_new_connections_are_held_to(
        ca: Authority, tmp_path: Path) -> None:
    """Rotating the client CA: the old CA's certificates stop getting in, the new one's do."""
    server = ca.issue("server")
    old_ca = Authority(tmp_path / "old", "old operators' CA")
    new_ca = Authority(tmp_path / "new", "new operators' CA")
    old_client = old_ca.issue("alice", server=False, client=True)
    new_client = new_ca.issue("bob", server=False, client=True)
    async for running in serve(read_material(server.cert, server.key, old_ca.cert)):
        assert (await get(running.url + "/", client(ca.cert, old_client)))[0] == 200
        running.tls.update(read_material(server.cert, server.key, new_ca.cert))
        assert (await get(running.url + "/", client(ca.cert, new_client)))[0] == 200
        with pytest.raises(aiohttp.ClientError):
            await get(running.url + "/", client(ca.cert, old_client))
        running.tls.update(read_material(server.cert, server.key, None))
        assert (await get(running.url + "/", client(ca.cert)))[0] == 200
