"""A local copy of every key under an etcd prefix: read once, then kept by a watch, read
again whenever the watch breaks. Each change hands the whole copy to ``on_change``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from failover.coordination.etcd import EtcdClient, EtcdUnavailable

log = logging.getLogger(__name__)

RETRY_EVERY = 1.0
"""Seconds between two attempts to read and watch the prefix again after a failure."""


class Mirror:
    """``resync_every``: the watch is replaced by a fresh read and watch this often. A watch
    stream on a member that stops answering (paused, cut off without a reset) would
    otherwise hang unseen; the read goes to whichever member answers."""

    def __init__(self, client: EtcdClient, prefix: str,
                 on_change: Callable[[Mapping[str, bytes]], None],
                 resync_every: float = 3.0) -> None:
        self._client = client
        self._prefix = prefix
        self._on_change = on_change
        self._resync_every = resync_every
        self.values: dict[str, bytes] = {}
        """Key (without the prefix) -> value."""
        self.connected = False
        """Whether the watch is in place; while it is not, the copy may be behind."""
        self.changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._resync_every):
                    await self._sync()
            except TimeoutError:
                continue  # time for a fresh read and watch
            except EtcdUnavailable as exc:
                self.connected = False
                log.warning("watching %s: %s", self._prefix, exc)
                await asyncio.sleep(RETRY_EVERY)

    async def _sync(self) -> None:
        kvs, revision = await self._client.get_prefix(self._prefix)
        self.values = {kv.key.removeprefix(self._prefix): kv.value for kv in kvs}
        self._changed()
        async for batch in self._client.watch(self._prefix, revision + 1, prefix=True):
            self.connected = True
            for event in batch:
                key = event.kv.key.removeprefix(self._prefix)
                if event.kind == "delete":
                    self.values.pop(key, None)
                else:
                    self.values[key] = event.kv.value
            if batch:
                self._changed()

    def _changed(self) -> None:
        self._on_change(dict(self.values))
        self.changed.set()
