"""One replica's lease, and the election of one leader among the replicas.

The lease is renewed every TTL/3. Its ``valid_until`` is the send time of the last renewal
that etcd answered, plus the TTL it reported: etcd cannot have expired it before then, so up
to that instant (less a margin) our leadership still holds, whatever our clock rate or a pause
did meanwhile. Safety does not rest on that local bound alone: every write a leader makes
through etcd is a transaction fenced on its leader key's create revision (its *epoch*), and
the data planes that can keep an epoch refuse an older one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from failover.coordination.etcd import EtcdClient, EtcdUnavailable, LeaseGone

log = logging.getLogger(__name__)

Role = Literal["leader", "follower"]


class Lease:
    """Granted on first need, renewed every ``ttl / 3``; a lease etcd lets lapse (after a
    pause, a partition) is replaced by a new one, and ``lost`` is set for whoever held
    something under the old one."""

    def __init__(self, client: EtcdClient, ttl: float, clock: Callable[[], float]) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self.id: int | None = None
        self.valid_until = -math.inf
        """Loop time before which etcd cannot have expired the lease."""
        self.granted = asyncio.Event()
        self.lost = asyncio.Event()
        """Set when a lease we held expired; cleared once a new one is granted."""

    def valid(self, margin: float = 0.0) -> bool:
        return self.id is not None and self._clock() < self.valid_until - margin

    async def run(self) -> None:
        while True:
            try:
                if self.id is None:
                    await self._grant()
                else:
                    await self._renew(self.id)
            except EtcdUnavailable as exc:
                # Keep trying: valid_until is not moved, so the lease lapses locally on time.
                log.warning("etcd lease: %s", exc)
            await asyncio.sleep(self._ttl / 3)

    async def _grant(self) -> None:
        sent = self._clock()
        lease, ttl = await self._client.grant(math.ceil(self._ttl))
        self.id, self.valid_until = lease, sent + ttl
        self.lost.clear()
        self.granted.set()
        log.info("etcd lease %x granted, ttl %ds", lease, ttl)

    async def _renew(self, lease: int) -> None:
        sent = self._clock()
        ttl = await self._client.keepalive(lease)
        if ttl > 0:
            self.valid_until = sent + ttl
            return
        log.warning("etcd lease %x expired (we were paused or cut off longer than its ttl)",
                    lease)
        self.gone(lease)

    def gone(self, lease: int) -> None:
        """``lease`` is no more (etcd said so, in whatever reply): a new one is granted at
        the next turn, and whoever held something under it learns it is lost."""
        if self.id != lease:
            return
        self.id, self.valid_until = None, -math.inf
        self.granted.clear()
        self.lost.set()

    async def revoke(self) -> None:
        """On a clean stop: hand leadership over now rather than after a TTL."""
        if self.id is not None:
            lease, self.id, self.valid_until = self.id, None, -math.inf
            await self._client.revoke(lease)


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    name: str
    since: float
    """Loop time at which this replica learnt of (or took) the leadership."""


class Election:
    """Campaigns for ``key`` with the replica's ``name`` under its lease. The leader holds
    the key, and checks every ``ttl / 2`` that it still does; followers watch it and
    campaign when it goes."""

    def __init__(self, client: EtcdClient, lease: Lease, key: str, name: str, ttl: float,
                 clock: Callable[[], float], margin: float,
                 eligible: Callable[[], bool] = lambda: True) -> None:
        """``eligible`` says whether this replica may lead now: one whose own view the
        others outvote (its network is the likelier fault) must not plan for everyone."""
        self._client = client
        self._eligible = eligible
        self._lease = lease
        self._key = key
        self._name = name
        self._ttl = ttl
        self._clock = clock
        self._margin = margin
        self.role: Role = "follower"
        self.epoch: int | None = None
        """Our leader key's create revision while we lead."""
        self.leader: LeaderInfo | None = None
        self.changed = asyncio.Event()
        """Set at every change of role or leader."""

    def leading(self) -> bool:
        """Whether we may act as leader now: we won, and the lease certainly still holds
        for ``margin`` more seconds."""
        return self.role == "leader" and self._lease.valid(self._margin)

    async def still_leading(self) -> bool:
        """``leading()``, confirmed by a linearizable read that the key is still ours: the
        check before every actuation."""
        if not self.leading() or self.epoch is None:
            return False
        try:
            kv, _ = await self._client.get(self._key)
        except EtcdUnavailable:
            return False
        return kv is not None and kv.create_revision == self.epoch and self.leading()

    async def run(self) -> None:
        while True:
            try:
                await self._lease.granted.wait()
                await self._campaign()
            except EtcdUnavailable as exc:
                log.warning("etcd election: %s", exc)
                self._set("follower", None, self.leader)
                await asyncio.sleep(self._ttl / 3)

    async def _campaign(self) -> None:
        lease = self._lease.id
        if lease is None:
            return
        if not self._eligible():
            kv, _ = await self._client.get(self._key)
            if kv is None:  # nobody leads, and we may not: look again shortly
                self._set("follower", None, None)
                await asyncio.sleep(self._ttl / 3)
                return
            self._set("follower", None, LeaderInfo(kv.value.decode(errors="replace"),
                                                   self._clock()))
            await self._follow(kv.mod_revision)
            return
        try:
            made, kv = await self._client.create(self._key, self._name.encode(), lease)
        except LeaseGone:
            self._lease.gone(lease)
            return
        if made and kv is not None:
            self._set("leader", kv.create_revision, LeaderInfo(self._name, self._clock()))
            log.warning("leader now, epoch %d", kv.create_revision)
            await self._hold(kv.create_revision)
            return
        if kv is None:
            return  # gone between the txn's compare and its read: campaign again
        holder = kv.value.decode(errors="replace")
        if self.leader is None or self.leader.name != holder:
            self._set("follower", None, LeaderInfo(holder, self._clock()))
        await self._follow(kv.mod_revision)

    async def _hold(self, epoch: int) -> None:
        """Lead until the lease is lost or the key is no longer the one we created."""
        while True:
            lost = asyncio.create_task(self._lease.lost.wait())
            try:
                await asyncio.wait({lost}, timeout=self._ttl / 2)
            finally:
                lost.cancel()
            if self._lease.lost.is_set():
                break
            try:
                kv, _ = await self._client.get(self._key)
            except EtcdUnavailable:
                if not self._lease.valid():
                    break
                continue
            if kv is None or kv.create_revision != epoch:
                break
            if not self._eligible():
                log.warning("stepping down (epoch %d): the other vantages outvote our own "
                            "view", epoch)
                await self._client.delete_if_created(self._key, epoch)
                break
        log.warning("no longer leader (epoch %d)", epoch)
        self._set("follower", None, None)

    async def _follow(self, revision: int) -> None:
        """Until the leader key is deleted (then campaign), re-reading it every ``ttl / 2``
        in case the watch missed it."""
        while True:
            try:
                async with asyncio.timeout(self._ttl / 2):
                    async for batch in self._client.watch(self._key, revision + 1):
                        if any(e.kind == "delete" for e in batch):
                            self._set("follower", None, None)
                            return
            except TimeoutError:
                pass
            kv, _ = await self._client.get(self._key)
            if kv is None:
                self._set("follower", None, None)
                return
            holder = kv.value.decode(errors="replace")
            if self.leader is None or self.leader.name != holder:  # a change the watch missed
                self._set("follower", None, LeaderInfo(holder, self._clock()))
            revision = kv.mod_revision

    def _set(self, role: Role, epoch: int | None, leader: LeaderInfo | None) -> None:
        if (role, epoch, leader) != (self.role, self.epoch, self.leader):
            self.role, self.epoch, self.leader = role, epoch, leader
            self.changed.set()

