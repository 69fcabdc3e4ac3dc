"""A probe leaves nothing for the cyclic garbage collector, whatever its outcome.

At a thousand clusters the probes run thousands of times a second. Garbage in reference
cycles outlives its probe until a collection finds it; promoted to the oldest generation in
the meantime, it set off a full collection every few seconds that stopped the event loop
for 80-150 ms, and an operator's call with it (bench/admin_latency.py). Freed by reference
counting instead, it costs nothing later.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvloop

from failover.config import Job
from tests.probes.conftest import Prober, dns_job, http_job, tcp_job

RUNS = 20


@contextmanager
def saved_garbage() -> Iterator[list[object]]:
    """What the collector finds unreachable while the block runs, kept to be looked at."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def ours(garbage: list[object]) -> Counter[str]:
    """The garbage made by the probes' own code: the servers in this test and the event
    loop's internals are not what is under test."""
    return Counter(type(o).__qualname__ for o in garbage
                   if type(o).__module__.startswith(("failover", "httptools")))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    writer.close()


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # never answers; the probe's deadline ends it
    writer.close()


async def outcomes() -> dict[str, Counter[str]]:
    ok = await asyncio.start_server(serve_ok, "127.0.0.1", 0)
    hanging = await asyncio.start_server(hang, "127.0.0.1", 0)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    ok_port, hang_port = (s.sockets[0].getsockname()[1] for s in (ok, hanging))
    refused = closed_port()
    jobs: dict[str, tuple[Job, str | None]] = {
        "http answered": (http_job(f"http://127.0.0.1:{ok_port}/"), None),
        "http hanging": (http_job(f"http://127.0.0.1:{hang_port}/"), "timeout"),
        "http refused": (http_job(f"http://127.0.0.1:{refused}/"), "refused"),
        "tcp answered": (tcp_job(f"127.0.0.1:{ok_port}"), None),
        "tcp refused": (tcp_job(f"127.0.0.1:{refused}"), "refused"),
        "dns silent": (dns_job(f"127.0.0.1:{silent.getsockname()[1]}", "a.test"), "timeout"),
    }
    found = {}
    probe = Prober()
    try:
        for name, (job, failure) in jobs.items():
            await probe(job, within=0.2)  # imports and first-use caches are not garbage
            with saved_garbage() as garbage:
                results = await asyncio.gather(*(probe(job, within=0.2) for _ in range(RUNS)))
                assert {r.failure_class for r in results} == {failure}, (name, results[0])
                gc.collect()
                found[name] = ours(garbage)
    finally:
        silent.close()
        for server in (ok, hanging):
            server.close()
            await server.wait_closed()
    return found


@pytest.mark.parametrize("factory", [uvloop.new_event_loop, asyncio.new_event_loop],
                         ids=["uvloop", "asyncio"])
def test_probes_leave_no_cycles(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    # A loop factory, so that the runner leaves the thread's current loop alone: asyncio.run
    # unsets it on leaving, and pytest-asyncio makes a spare loop in its place, never closed.
    with asyncio.Runner(loop_factory=factory) as runner:
        found = runner.run(outcomes())
    assert found == {name: Counter() for name in found}
