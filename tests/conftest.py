"""Suite-wide fixtures: a lab of simulated clusters, and a guard that no test leaves tasks
running behind it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest

from failover.lab import Lab, LabOptions


@pytest.fixture
async def lab(request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    """Simulated clusters on free loopback ports: 3, or ``@pytest.mark.lab_clusters(N)``."""
    marker = request.node.get_closest_marker("lab_clusters")
    clusters = marker.args[0] if marker else 3
    async with Lab(LabOptions(clusters=clusters, dns_base_port=0, http_base_port=0,
                              control=None)) as running:
        yield running


@pytest.fixture
async def _task_guard() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    leftover = [t for t in asyncio.all_tasks() - before
                if t is not asyncio.current_task() and not t.done()]
    for task in leftover:
        task.cancel()
    assert not leftover, f"test left tasks running: {[t.get_name() for t in leftover]}"


@pytest.fixture(autouse=True)
def _no_leftover_tasks(request: pytest.FixtureRequest) -> None:
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("_task_guard")
