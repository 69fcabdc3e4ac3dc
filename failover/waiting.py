"""Interruptible waits on the loop clock."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait for ``event`` at most ``seconds`` (None: forever); True if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives just as
    the event is set (CPython gh-86296, fixed in 3.12), and a task that swallows its cancel
    keeps a TaskGroup, and so the daemon's stop, waiting. ``asyncio.timeout`` does not.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
