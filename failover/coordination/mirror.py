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
    def __init__(self, client: EtcdClient, prefix: str,
                 on_change: Callable[[Mapping[str, bytes]], None]) -> None:
        self._client = client
        self._prefix = prefix
        self._on_change = on_change
        self.values: dict[str, bytes] = {}
        """Key (without the prefix) -> value."""
        self.connected = False
        """Whether the watch is in place; while it is not, the copy may be behind."""
        self.changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._sync()
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
