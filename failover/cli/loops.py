"""Which event loop the daemon runs on: uvloop where it is installed, asyncio's own otherwise.

uvloop (libuv) runs the same probes for about a third less CPU, and every CPU-second saved
on the loop is queueing that no longer shows up in measured probe latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

CHOICES = ("auto", "uvloop", "asyncio")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def factory(choice: str) -> LoopFactory | None:
    """The loop factory for ``asyncio.Runner``; None is asyncio's default loop.

    ``uvloop`` insists on it (an ImportError if it is missing); ``auto`` falls back quietly,
    since a platform without uvloop is not a fault.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional, and only the daemon needs it
    except ImportError:
        if choice == "uvloop":
            raise
        log.info("uvloop is not installed: running on asyncio's own event loop")
        return None
    made: LoopFactory = uvloop.new_event_loop
    return made
