"""A real HAProxy on 127.0.0.1 for tests: started in the foreground with a generated config.

    async with running_haproxy(tmp_path, {"lab-1": "127.0.0.1:8101"}) as haproxy:
        ... http://127.0.0.1:{haproxy.frontend_port} balances over backend ``app`` ...
        ... await haproxy.command("show servers state app") ...

The config has a frontend on a free port, ``backend app`` (``balance roundrobin``) with one
server per entry, and three runtime API sockets: a unix one at level admin, a TCP one at
level admin (the ``address:`` form) and a unix one at level user (to see "Permission
denied"). HAProxy is required, not optional: ``scripts/setup --test`` installs it, and a
missing binary fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for a started HAProxy to answer on its socket before the test fails."""
STOP_TIMEOUT = 5.0
"""Seconds to wait for HAProxy to exit after SIGTERM before it is killed."""
BACKEND = "app"


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
    if found is None:
        msg = "haproxy not found on PATH or in /usr/sbin: install it (scripts/setup --test)"
        raise RuntimeError(msg)
    return found


@dataclass(frozen=True)
class ServerRow:
    """A server as ``show servers state`` reports it, parsed here independently of the code
    under test so the tests do not trust the parser they test."""

    weight: int
    admin_state: int

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & 0x08)


@dataclass
class Haproxy:
    process: asyncio.subprocess.Process
    socket: Path
    """Runtime API, level admin."""
    user_socket: Path
    """Runtime API, level user: ``set server`` is refused."""
    admin_address: str
    """Runtime API over TCP, level admin, as ``127.0.0.1:port``."""
    frontend_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def command(self, line: str, path: Path | None = None) -> str:
        """Send one command line on the admin socket (or ``path``) and return the reply."""
        reader, writer = await asyncio.open_unix_connection(str(path or self.socket))
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            reply = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
        return reply.decode()

    async def servers(self) -> dict[str, ServerRow]:
        """The backend's servers by name, from ``show servers state``."""
        lines = (await self.command(f"show servers state {BACKEND}")).splitlines()
        assert lines[0] == "1", f"unexpected reply: {lines}"
        header = lines[1].lstrip("#").split()
        rows = [dict(zip(header, line.split(), strict=True)) for line in lines[2:] if line]
        return {row["srv_name"]: ServerRow(int(row["srv_uweight"]),
                                           int(row["srv_admin_state"])) for row in rows}

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def write_config(path: Path, sockets: Path, admin_port: int, frontend_port: int,
                 servers: Mapping[str, str]) -> None:
    lines = "\n".join(f"    server {name} {address}" for name, address in servers.items())
    path.write_text(textwrap.dedent(f"""\
        global
            stats socket {sockets / 'admin.sock'} mode 600 level admin
            stats socket 127.0.0.1:{admin_port} level admin
            stats socket {sockets / 'user.sock'} mode 600 level user
            stats timeout 10s

        defaults
            mode http
            timeout connect 1s
            timeout client 10s
            timeout server 10s

        frontend web
            bind 127.0.0.1:{frontend_port}
            default_backend {BACKEND}

        backend {BACKEND}
            balance roundrobin
        """) + lines + "\n")


async def _answers(path: Path) -> bool:
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    try:
        writer.write(b"show info\n")
        await writer.drain()
        return b"Name: HAProxy" in await reader.read()
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # HAProxy may already have closed its side
            await writer.wait_closed()


async def start_haproxy(workdir: Path, servers: Mapping[str, str]) -> Haproxy:
    """Start HAProxy with one server per ``servers`` item; return once its socket answers."""
    binary = haproxy_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for attempt in range(3):  # a free port may be taken between our check and HAProxy's bind
        # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
        sockets = Path(tempfile.mkdtemp(prefix="haproxy-"))
        admin_port, frontend_port = free_port(), free_port()
        config = workdir / f"haproxy-{frontend_port}.cfg"
        write_config(config, sockets, admin_port, frontend_port, servers)
        log_path = workdir / f"haproxy-{frontend_port}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                binary, "-db", "-f", str(config), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log)
        running = Haproxy(process, sockets / "admin.sock", sockets / "user.sock",
                          f"127.0.0.1:{admin_port}", frontend_port, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.returncode is None and time.monotonic() < deadline:
            if await _answers(running.socket):
                return running
            await asyncio.sleep(0.02)  # poll interval while HAProxy starts, not a sync
        await running.stop()
        shutil.rmtree(sockets)
        failures.append(f"attempt {attempt + 1}: exit {process.returncode}\n{running.log()}")
    raise RuntimeError("haproxy did not start:\n" + "\n".join(failures))


@contextlib.asynccontextmanager
async def running_haproxy(workdir: Path, servers: Mapping[str, str]) -> AsyncIterator[Haproxy]:
    """HAProxy for the duration of the block; stopped and its sockets removed after."""
    haproxy = await start_haproxy(workdir, servers)
    try:
        yield haproxy
    finally:
        await haproxy.stop()
        shutil.rmtree(haproxy.socket.parent)
