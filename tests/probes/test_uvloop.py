"""The probes on uvloop, the loop the daemon runs on where it is installed: the other probe
tests run on asyncio's own loop, and the two differ in what a transport and a socket call do."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvloop
from aiohttp import web

from tests.dnsmasq import Dnsmasq
from tests.probes.conftest import Prober, dns_job, http_job, tcp_job


def on_uvloop(test: Callable[[], Awaitable[None]]) -> None:
    uvloop.run(test())


def closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_http_verdicts_on_uvloop() -> None:
    async def test() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async def ready(_: web.Request) -> web.Response:
            return web.Response(text="status: READY")

        async def fail(_: web.Request) -> web.Response:
            return web.Response(status=500)

        app = web.Application()
        app.router.add_get("/ok", ready)
        app.router.add_get("/fail", fail)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        probe = Prober()
        try:
            assert (await probe(http_job(f"{base}/ok", expect_body="READY"))).ok
            assert (await probe(http_job(f"{base}/fail"))).failure_class == "bad_status"
            assert (await probe(http_job(f"{base}/ok", expect_body="GONE"))).failure_class \
                == "bad_body"
        finally:
            await runner.cleanup()
        refused = await probe(http_job(f"http://127.0.0.1:{closed_port(socket.SOCK_STREAM)}/"))
        assert refused.failure_class == "refused", refused

    on_uvloop(test)


def test_dns_and_tcp_verdicts_on_uvloop(dnsmasq: Dnsmasq) -> None:
    async def test() -> None:
        probe = Prober()
        assert (await probe(dns_job(dnsmasq.address, "ok.test", expect=["10.9.9.9"]))).ok
        assert (await probe(dns_job(dnsmasq.address, "missing.test"))).failure_class \
            == "nxdomain"
        # Nothing listens: the connected UDP socket hears ICMP port-unreachable at once.
        gone = await probe(dns_job(f"127.0.0.1:{closed_port(socket.SOCK_DGRAM)}", "ok.test"))
        assert (gone.failure_class, gone.latency < 0.5) == ("network_error", True), gone
        assert (await probe(tcp_job(f"127.0.0.1:{dnsmasq.port}"))).ok

    on_uvloop(test)
