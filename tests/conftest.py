"""Suite-wide guards: no test may leave tasks running behind it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest


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
