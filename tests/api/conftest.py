"""The status listener served on a free port over a fake source, for the api tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from failover.api.server import Listener
from failover.api.status import status_app
from failover.metrics import Metrics
from tests.api.test_status import FakeSource


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeSource, str]]:
    source = FakeSource()
    metrics = Metrics(CollectorRegistry())
    listener = Listener("status", status_app(source, metrics), "127.0.0.1:0")
    task = asyncio.create_task(listener.serve())
    await listener.ready.wait()
    try:
        yield source, f"http://{listener.bound[0]}"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
