"""Fixtures for hostile-input tests: the probe helper and misbehaving servers that stop at
teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, TypeVar

import pytest

from tests.hostile.servers import DnsServer, TcpServer

# The probe tests' own fixtures, not copies of them.
from tests.probes.conftest import probe  # noqa: F401

Server = TypeVar("Server", TcpServer, DnsServer)


class Serve(Protocol):
    async def __call__(self, server: Server, /) -> Server:
        """Start ``server``; it is closed at teardown."""
        ...


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: runs for a minute of real time (deselect with -m 'not soak')")


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a server for the test; every one started is closed at teardown."""
    started: list[TcpServer | DnsServer] = []

    async def start(server: Server) -> Server:
        await server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            await server.close()
