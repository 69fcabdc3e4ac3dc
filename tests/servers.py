"""What the tests' real servers share: free loopback ports, a foreground process that can
be paused (SIGSTOP) and is always stopped, even while paused, and an aiohttp app served for
the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web


def free_port() -> int:
    """A TCP port with nobody listening on 127.0.0.1 right now (a server started on it may
    still lose it to a race; the helpers that start servers retry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (DNS servers serve both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    msg = "no port free for both UDP and TCP on 127.0.0.1"
    raise RuntimeError(msg)


def terminate(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; one that has already exited is left alone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class Foreground:
    """Mixin for a server run in the foreground as ``self.process``."""

    process: subprocess.Popen[bytes]
    paused: bool

    def pause(self) -> None:
        """SIGSTOP: its sockets stay open, so clients connect or send and get no answer."""
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop_process(self) -> None:
        if self.process.poll() is None and self.paused:
            self.resume()  # a stopped process would hold SIGTERM pending forever
        terminate(self.process)


async def bind_udp_tcp(
    udp: Callable[[], asyncio.DatagramProtocol],
    tcp: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.DatagramTransport, asyncio.Server, int]:
    """A DNS-style listener on UDP and TCP of one free 127.0.0.1 port."""
    loop = asyncio.get_running_loop()
    for _ in range(20):  # the UDP port's TCP twin may be taken: try another
        transport, _ = await loop.create_datagram_endpoint(
            udp, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
        port: int = transport.get_extra_info("sockname")[1]
        try:
            server = await asyncio.start_server(tcp, "127.0.0.1", port)
        except OSError:
            transport.close()
            continue
        return transport, server, port
    msg = "no port free for both UDP and TCP"
    raise RuntimeError(msg)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on a free loopback port while the block runs; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
