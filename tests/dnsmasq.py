"""A real dnsmasq on 127.0.0.1 for tests: started in the foreground, configured by arguments.

    with running_dnsmasq(tmp_path, "--address=/ok.test/10.9.9.9") as server:
        ... query 127.0.0.1:server.port ...

dnsmasq is required, not optional: CI installs it, and a missing binary fails the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.servers import Foreground, free_udp_tcp_port

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for a started dnsmasq to answer before the test fails."""
_READY_NAME = "ready.dnsmasq.test"


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq") or shutil.which("/usr/sbin/dnsmasq")
    if found is None:
        msg = "dnsmasq not found on PATH or in /usr/sbin: install it (Debian: dnsmasq-base)"
        raise RuntimeError(msg)
    return found


@dataclass
class Dnsmasq(Foreground):
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    paused: bool = field(default=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.stop_process()


def _answers(port: int) -> bool:
    query = dns.message.make_query(_READY_NAME, "A")
    # Connected, so a port not yet bound fails at once (ICMP) instead of after the timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5, sock=sock)
        except ConnectionRefusedError:
            time.sleep(0.01)  # poll interval while dnsmasq binds, not a synchronisation
            return False
        except (dns.exception.Timeout, OSError):
            return False
    return True


def start_dnsmasq(workdir: Path, *args: str) -> Dnsmasq:
    """Start dnsmasq with ``args`` on a free port and return once it answers queries."""
    binary = dnsmasq_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for attempt in range(3):  # the free port may be taken between our check and dnsmasq's bind
        port = free_udp_tcp_port()
        log_path = workdir / f"dnsmasq-{port}.log"
        argv = [
            binary, "--keep-in-foreground", "--conf-file=/dev/null",
            f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--no-poll",
            f"--pid-file={workdir / f'dnsmasq-{port}.pid'}",
            "--log-facility=-", "--log-queries",
            f"--address=/{_READY_NAME}/127.0.0.1",
            # Root would drop to 'nobody' and could no longer read files in a 0700 temp dir.
            *(["--user=root"] if os.geteuid() == 0 else []),
            *args,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        server = Dnsmasq(process, port, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                return server
        server.stop()
        failures.append(f"attempt {attempt + 1} (port {port}): exit {process.returncode}\n"
                        f"{server.log()}")
    raise RuntimeError("dnsmasq did not start:\n" + "\n".join(failures))


@contextmanager
def running_dnsmasq(workdir: Path, *args: str) -> Iterator[Dnsmasq]:
    server = start_dnsmasq(workdir, *args)
    try:
        yield server
    finally:
        server.stop()
