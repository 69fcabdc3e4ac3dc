"""Every replica's verdicts through etcd: each publishes its own under its lease (so a dead
replica's entry goes with its lease), and each watches everyone's, stamping a report with
its own clock when it arrives, so freshness is judged on one clock.

One value per replica, ``<prefix>/vantage/<name>``: put when the verdicts change, at most
once per ``every``, and at least every ``heartbeat`` as a sign of life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from failover.coordination.etcd import EtcdClient, EtcdUnavailable, LeaseGone
from failover.coordination.leader import Lease
from failover.coordination.mirror import Mirror
from failover.coordination.quorum import ClusterVerdict, Report

log = logging.getLogger(__name__)

MAX_VALUE_BYTES = 1024 * 1024
"""One replica's verdicts at 10,000 clusters stay well under this."""


def encode(clusters: Mapping[str, ClusterVerdict], self_check_ok: bool, seq: int) -> bytes:
    return json.dumps({
        "seq": seq, "self_check_ok": self_check_ok,
        "clusters": {name: {"verdict": v.verdict, "reason": v.reason}
                     for name, v in sorted(clusters.items())}},
        separators=(",", ":")).encode()


class BadReport(ValueError):
    pass


def decode(vantage: str, data: bytes, received_at: float) -> Report:
    """A published value as a report; BadReport saying what is wrong with it."""
    if len(data) > MAX_VALUE_BYTES:
        msg = f"{len(data)} bytes, over {MAX_VALUE_BYTES}"
        raise BadReport(msg)
    try:
        doc: Any = json.loads(data)
    except ValueError as exc:
        msg = f"not JSON: {exc}"
        raise BadReport(msg) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), dict):
        msg = "expected an object with a 'clusters' object"
        raise BadReport(msg)
    clusters = {}
    for name, entry in doc["clusters"].items():
        verdict = entry.get("verdict") if isinstance(entry, dict) else None
        if verdict not in ("passing", "failing", "unknown"):
            msg = f"clusters.{name}.verdict: expected passing, failing or unknown, got {verdict!r}"
            raise BadReport(msg)
        clusters[str(name)] = ClusterVerdict(verdict, str(entry.get("reason", "")))
    return Report(vantage, clusters, received_at, bool(doc.get("self_check_ok", True)))


class Publisher:
    """Puts this replica's latest verdicts: on change (at most once per ``every``) and every
    ``heartbeat``; a lost lease is re-published under the new one."""

    def __init__(self, client: EtcdClient, lease: Lease, key: str, every: float,
                 heartbeat: float, clock: Callable[[], float]) -> None:
        self._client = client
        self._lease = lease
        self._key = key
        self._every = every
        self._heartbeat = heartbeat
        self._clock = clock
        self._latest: tuple[dict[str, ClusterVerdict], bool] | None = None
        self._sent: tuple[tuple[dict[str, ClusterVerdict], bool], int | None] | None = None
        self._sent_at = -math.inf
        self._seq = 0
        self._offered = asyncio.Event()

    def offer(self, clusters: Mapping[str, ClusterVerdict], self_check_ok: bool) -> None:
        self._latest = (dict(clusters), self_check_ok)
        self._offered.set()

    async def run(self) -> None:
        while True:
            due = self._sent_at + self._heartbeat
            try:
                async with asyncio.timeout(max(0.0, due - self._clock())):
                    await self._offered.wait()
            except TimeoutError:
                pass
            self._offered.clear()
            await self._publish()
            await asyncio.sleep(self._every)

    async def _publish(self) -> None:
        lease = self._lease.id
        if self._latest is None or lease is None:
            return
        fresh = (self._latest, lease) != self._sent
        if not fresh and self._clock() < self._sent_at + self._heartbeat:
            return
        self._seq += 1
        clusters, ok = self._latest
        try:
            await self._client.put(self._key, encode(clusters, ok, self._seq), lease)
        except LeaseGone:
            self._lease.gone(lease)  # published again under the next lease
            return
        except EtcdUnavailable as exc:
            log.warning("publishing our verdicts: %s", exc)
            return
        self._sent, self._sent_at = (self._latest, lease), self._clock()


class Collector:
    """Everyone's latest report, this replica's included, from a mirror of the prefix; a
    replica whose key goes (its lease lapsed) drops out. A report counts as received when
    its bytes change: a re-read after a broken watch brings no news."""

    def __init__(self, client: EtcdClient, prefix: str, clock: Callable[[], float],
                 on_bad: Callable[[str, str], None], resync_every: float = 3.0) -> None:
        self._clock = clock
        self._on_bad = on_bad
        self._mirror = Mirror(client, prefix, self._update, resync_every)
        self._raw: dict[str, bytes] = {}
        self.reports: dict[str, Report] = {}
        self.changed = self._mirror.changed
        """Set at every report received or dropped."""

    @property
    def connected(self) -> bool:
        return self._mirror.connected

    async def run(self) -> None:
        await self._mirror.run()

    def _update(self, values: Mapping[str, bytes]) -> None:
        now = self._clock()
        for gone in set(self._raw) - values.keys():
            del self._raw[gone]
            self.reports.pop(gone, None)
        for vantage, data in values.items():
            if self._raw.get(vantage) == data:
                continue
            self._raw[vantage] = data
            try:
                self.reports[vantage] = decode(vantage, data, now)
            except BadReport as exc:
                self._on_bad(vantage, str(exc))  # its last good report stays, and ages
