"""The daemon's state on disk: saved before each plan is applied, at each operator change,
and once more at shutdown; a save that hangs never holds the plan back for long."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from failover.actuators.file import write_atomically
from failover.daemon import persist
from failover.daemon.overrides import Overrides
from failover.daemon.supervisor import StartupError
from failover.metrics import Metrics
from failover.model import Plan

log = logging.getLogger("failover.daemon")

SAVE_WAIT = 1.0
"""Seconds a tick waits for its state to be saved before applying the plan anyway."""


class StateKeeper:
    def __init__(self, path: Path, metrics: Metrics, wait: float = SAVE_WAIT) -> None:
        self.path = path
        self._metrics = metrics
        self._wait = wait
        self._saved: dict[str, Any] | None = None
        self._saving: asyncio.Future[None] | None = None
        self._plan: Plan | None = None
        """The newest plan asked to be saved."""
        self.failing: str | None = None
        """Why the last save failed; None once one succeeds. /healthz reports it."""

    def check_writable(self) -> None:
        """At start: a daemon that cannot save its state would lose every freeze and drain
        on its next restart, so it does not start."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = self.path.with_name(f".{self.path.name}.probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            msg = f"state_dir {self.path.parent} is not writable: {exc.strerror or exc}"
            raise StartupError(msg) from exc

    def restore(self, loop_now: float) -> persist.Saved:
        return persist.load(self.path, persist.Clocks(loop_now, time.time()))

    async def save(self, plan: Plan | None, overrides: Overrides) -> None:
        """Save unless nothing changed, waiting at most the bound: a disk that hangs must
        not hold back an evacuation (the write goes on; a later save follows once it ends)."""
        loop = asyncio.get_running_loop()
        if plan is not None and (self._plan is None or plan.at >= self._plan.at):
            self._plan = plan
        while self._saving is not None and not self._saving.done():
            # Another save (a tick's, an operator's) is writing: this one follows it, one
            # write at a time, so an older state can never land last.
            done, _ = await asyncio.wait({self._saving}, timeout=self._wait)
            if not done:
                self._failed(f"a save to {self.path} is still running after "
                             f"{self._wait:g}s; this state is not saved")
                return
        # The newest plan any caller gave, whoever calls: an operator's save while a tick's
        # is under way must not write the plan from before that tick.
        doc = persist.document(self._plan, overrides, persist.Clocks(loop.time(), time.time()))
        if doc == self._saved:
            return
        # Encoded on the thread too: at fleet scale the text is hundreds of kilobytes.
        # Kept here as well: another save may take self._saving over once this one is done.
        saving = self._saving = asyncio.ensure_future(asyncio.to_thread(_write, self.path, doc))
        done, _ = await asyncio.wait({saving}, timeout=self._wait)
        if not done:
            self._failed(f"saving state to {self.path} takes over {self._wait:g}s; "
                         "going on meanwhile")
            return
        try:
            saving.result()
        except OSError as exc:
            # The plan still holds in memory; only a restart would lose it. Say so loudly.
            self._failed(f"cannot save state to {self.path}: {exc}")
            return
        self._saved = doc
        self.failing = None

    async def settle(self) -> None:
        """Let a save under way finish (or give up on it) before the loop goes."""
        if self._saving is not None and not self._saving.done():
            await asyncio.wait({self._saving}, timeout=self._wait)

    def _failed(self, why: str) -> None:
        self._metrics.errors.labels("persist").inc()
        if why != self.failing:  # once per kind of failure, not once per tick
            log.error("%s", why)
        self.failing = why


def _write(path: Path, doc: dict[str, Any]) -> None:
    write_atomically(path, persist.encode(doc))
