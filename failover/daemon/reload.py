"""Config reloads: on SIGHUP, on an admin call, and when the file's content changes. A bad
config keeps the running one and is reported, never applied."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failover.config import Config, ConfigError, load
from failover.daemon.validate import Refused, refusals
from failover.metrics import Metrics

log = logging.getLogger("failover.daemon")

WATCH_EVERY = 2.0
"""Seconds between two looks at the config file's content."""


def _digest(path: Path) -> bytes | None:
    """The file's content hash; None while it cannot be read (mid-rename, deleted)."""
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


def _validated(path: Path) -> Config:
    """The config at ``path``, refused for everything ``run`` would refuse."""
    config = load(path)
    found = refusals(config)
    if found:
        raise Refused("\n".join(f"{path}: {r.message}" for r in found))
    return config


class Reloader:
    """``apply`` takes a new config up, or returns why it will not (the running one stays)."""

    def __init__(self, path: Path | None, running: Callable[[], Config],
                 apply: Callable[[Config], str | None], metrics: Metrics,
                 watch_every: float = WATCH_EVERY) -> None:
        self.path = path
        self._running = running
        self._apply = apply
        self._metrics = metrics
        self.watch_every = watch_every
        """Seconds between two looks at the file (the token file's watch keeps the same)."""
        self.requested = asyncio.Event()
        self._seen: bytes | None = None
        """Digest of the content last read (by any reload or look): the watch asks only for
        content nobody has tried yet."""
        self._one_at_a_time = asyncio.Lock()
        self.last: dict[str, Any] = {"result": None, "at": None, "error": None}

    def error(self) -> str | None:
        error: str | None = self.last.get("error")
        return error

    def reload(self) -> bool:
        """Re-read the config now (the admin API's call); False when it was refused."""
        if self.path is None:
            return False
        # Digest before reading: a change in between is then seen by the watch, never missed.
        self._seen = _digest(self.path)
        try:
            new = _validated(self.path)
        except (ConfigError, Refused, OSError) as exc:
            return self._refused(exc)
        return self._take(new)

    async def reload_off_loop(self) -> bool:
        """As ``reload``, with the file read and parsed on a thread: a large file must not
        stall probes and planning."""
        if self.path is None:
            return False
        async with self._one_at_a_time:
            self._seen = await asyncio.to_thread(_digest, self.path)
            return await self._load_off_loop(self.path)

    async def _load_off_loop(self, path: Path) -> bool:
        try:
            new = await asyncio.to_thread(_validated, path)
        except (ConfigError, Refused, OSError) as exc:
            return self._refused(exc)
        return self._take(new)

    def _refused(self, exc: Exception) -> bool:
        self._metrics.config_reloads.labels("error").inc()
        self.last = {"result": "error", "at": _now(), "error": str(exc)}
        log.error("config reload failed, keeping the running config:\n%s", exc)
        return False

    def _take(self, new: Config) -> bool:
        old = self._running()
        # listen.tls is taken up at once (`Daemon._take_tls`); the rest of listen is not.
        if new.actuators != old.actuators or _bound(new) != _bound(old) \
                or new.signals != old.signals or new.coordination != old.coordination:
            log.warning("listener, actuator, signals and coordination changes take effect at "
                        "the next restart")
        refused = self._apply(new)
        if refused is not None:
            return self._refused(Refused(f"{self.path}: {refused}"))
        self._metrics.config_reloads.labels("ok").inc()
        self.last = {"result": "ok", "at": _now(), "error": None}
        log.info("config reloaded from %s", self.path)
        return True

    async def run(self) -> None:
        """Reload whenever asked."""
        while True:
            await self.requested.wait()
            self.requested.clear()
            await self.reload_off_loop()

    async def watch(self) -> None:
        """Reload when the file's content changes to something no reload has read yet. The
        path is read anew each time, so an editor's write-to-temp-then-rename is seen like an
        in-place write."""
        if self.path is None:
            await asyncio.Event().wait()  # nothing to watch; park until cancelled
            return
        initial = await asyncio.to_thread(_digest, self.path)
        if self._seen is None:
            self._seen = initial
        while True:
            await asyncio.sleep(self.watch_every)
            async with self._one_at_a_time:
                before = self._seen
                current = await asyncio.to_thread(_digest, self.path)
                # A synchronous reload() may have run during the look, and read this already.
                if current is None or current in (before, self._seen):
                    continue
                self._seen = current
                log.info("config file %s changed; reloading", self.path)
                await self._load_off_loop(self.path)


def _bound(config: Config) -> object:
    """What the listeners were bound with, TLS aside."""
    return config.listen.model_copy(update={"tls": None})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
