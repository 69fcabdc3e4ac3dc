"""The TCP probe: a listening port passes, a closed one is refused, a silent one times out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tests.probes.conftest import Prober, tcp_job


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so connects hang.

    With listen(0) Linux queues one connection; ours fills it and is never accepted.
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.settimeout(5)
        filler.connect(listener.getsockname())
        yield listener.getsockname()[1]


async def test_listening_port_passes(listening_port: int, probe: Prober) -> None:
    """A port that completes the handshake passes after one request."""
    result = await probe(tcp_job(f"127.0.0.1:{listening_port}"))
    assert result.ok, result
    assert result.detail == f"connected to 127.0.0.1:{listening_port}"
    assert probe.permit.calls == 1


async def test_closed_port_is_refused(probe: Prober) -> None:
    """A port nobody listens on is refused, at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await probe(tcp_job(f"127.0.0.1:{port}"), within=5)
    assert (result.ok, result.failure_class) == (False, "refused")
    assert result.latency < 1


async def test_unanswered_connect_times_out_at_the_deadline(
        full_backlog_port: int, probe: Prober) -> None:
    """A connect the peer never answers yields timeout at the deadline."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(tcp_job(f"127.0.0.1:{full_backlog_port}"), within=0.3)
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert 0.3 <= loop.time() - started < 0.45
