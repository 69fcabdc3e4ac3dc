"""Supervision: essential tasks that never end, heartbeats that prove they still make
progress, and the errors that stop the process instead of being hidden."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from failover.api.server import Listener
from failover.config import Config
from failover.metrics import Metrics

log = logging.getLogger(__name__)

LAG_PERIOD = 0.25
"""Seconds between two loop-lag samples."""


class StartupError(Exception):
    """Something the daemon needs is not there (a port in use, an unwritable state_dir, an
    unreadable token file): one line for the operator, exit 1, never a traceback."""


class TaskDied(Exception):
    """An essential task raised or returned: the process stops (exit 70) so that systemd or
    the container restarts it; the data plane keeps the weights it has."""

    def __init__(self, name: str) -> None:
        super().__init__(f"task {name} died")
        self.name = name


async def essential(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a task that must never end. Restarting it here would hide a bug that recurs; a
    task that handles its own errors does so in its loop (the planner keeps the last plan)."""
    try:
        await run()
    except (asyncio.CancelledError, StartupError):
        raise
    except Exception as exc:
        log.critical("task %s died: %r; stopping", name, exc, exc_info=exc)
        raise TaskDied(name) from exc
    log.critical("task %s returned; stopping", name)
    raise TaskDied(name)


class Heartbeats:
    """When each essential loop last made progress, and how long it may go without."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._within: dict[str, float] = {}

    def expect(self, name: str, within: float) -> None:
        """``name`` must beat at least every ``within`` seconds from now on."""
        self._within[name] = within
        self._last.setdefault(name, self._clock())

    def beat(self, name: str) -> None:
        self._last[name] = self._clock()

    def stalled(self) -> list[str]:
        """The loops overdue now, each with how long it has been silent (none before any
        is expected: the daemon is not running, and its clock may not be either)."""
        if not self._within:
            return []
        now = self._clock()
        return [f"{name} silent for {now - self._last[name]:.1f}s (bound {within:g}s)"
                for name, within in self._within.items() if now - self._last[name] > within]


async def lag_loop(metrics: Metrics, heartbeats: Heartbeats) -> None:
    """How late the loop wakes a timer: the probes' latencies are only ours to trust while
    this stays small."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        heartbeats.beat("loop-lag")
        await asyncio.sleep(LAG_PERIOD)
        metrics.event_loop_lag.observe(max(0.0, loop.time() - start - LAG_PERIOD))


def expect_progress(heartbeats: Heartbeats, config: Config, slack: float) -> None:
    """How long each essential loop may go without progress: its own period, and ``slack``."""
    heartbeats.expect("planner", config.policy.tick + slack)
    heartbeats.expect("loop-lag", LAG_PERIOD + slack)
    probing = config.probing
    # Every job reports at least once per interval (jitter included) plus its timeout.
    heartbeats.expect("prober", probing.interval * (1 + probing.jitter) + probing.timeout
                      + slack)


async def listening(listener: Listener) -> None:
    """Serve ``listener``; a port it cannot bind is a startup error, said in one line."""
    try:
        await listener.serve()
    except OSError as exc:
        if listener.ready.is_set():
            raise
        # asyncio's bind error repeats the address; the errno's text is the news.
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        msg = f"{listener.name} listener: cannot listen on {listener.address}: {why}"
        raise StartupError(msg) from exc
