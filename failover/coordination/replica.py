"""This daemon's part in the distributed mode: its lease, the election, its published
verdicts and everyone else's, the quorum view it decides from when it leads, and the plan
kept in etcd so that a new leader takes up where the last one stopped.

Keys, under the configured prefix: ``leader`` (the leader's vantage name, bound to its lease;
its create revision is the epoch), ``vantage/<name>`` (each replica's verdicts, under its own
lease) and ``plan`` (the leader's latest plan, written only with a transaction fenced on the
epoch, before any actuator sees it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from failover.config.coordination import Coordination
from failover.coordination.etcd import EtcdClient, EtcdUnavailable, client_session
from failover.coordination.leader import Election, LeaderInfo, Lease, Role
from failover.coordination.mirror import Mirror
from failover.coordination.quorum import (
    ClusterVerdict,
    QuorumView,
    Report,
    apply_quorum,
    quorum_view,
    verdict_of,
)
from failover.coordination.vantages import Collector, Publisher
from failover.model import ClusterView

log = logging.getLogger(__name__)

STALE_HEARTBEATS = 3
"""A vantage whose report has not been renewed for this many heartbeats is stale."""


class Replica:
    def __init__(self, spec: Coordination, clock: Callable[[], float], tick: float,
                 on_bad_report: Callable[[str, str], None],
                 on_overrides: Callable[[Mapping[str, bytes]], None]) -> None:
        """``on_overrides`` gets every operator override in etcd (key under ``overrides/``
        -> value) at each change: drains and freezes survive a change of leader, and an
        admin call to any replica reaches the leader through etcd."""
        self.spec = spec
        self.name = spec.vantage
        self._clock = clock
        self._tick = tick
        self._on_bad = on_bad_report
        self._on_overrides = on_overrides
        etcd = spec.etcd
        self._heartbeat = etcd.lease_ttl / 3
        self.stale_after = STALE_HEARTBEATS * self._heartbeat + tick
        self._keys = {k: f"{etcd.prefix}/{k}" for k in ("leader", "plan")}
        self._vantages = f"{etcd.prefix}/vantage/"
        self._overrides = f"{etcd.prefix}/overrides/"
        self._client: EtcdClient | None = None
        self._lease: Lease | None = None
        self._election: Election | None = None
        self._publisher: Publisher | None = None
        self._collector: Collector | None = None
        self.view: QuorumView | None = None
        """The quorum view of the last tick this replica led."""
        self.eligible = True
        """Whether this replica may lead: not while the other vantages exclude its own."""
        self._judged: tuple[QuorumView, dict[str, Report]] = (
            quorum_view([], [], 0.0, stale_after=self.stale_after, quorum=spec.quorum,
                        min_vantages=spec.min_vantages), {})
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """The etcd session and every loop of this replica's part, until cancelled.

        The TLS material is the one read when this replica was built: a reload that changes
        ``coordination`` (its certificates too) takes effect at the next restart, as the
        reloader says."""
        etcd = self.spec.etcd
        tls = None if etcd.tls is None else etcd.tls.material
        async with client_session(tls) as session:
            client = EtcdClient(etcd.endpoints, etcd.timeout, session, tls)
            lease = Lease(client, etcd.lease_ttl, self._clock)
            self._client, self._lease = client, lease
            self._election = Election(client, lease, self._keys["leader"], self.name,
                                      etcd.lease_ttl, self._clock, margin=etcd.timeout,
                                      eligible=lambda: self.eligible)
            self._publisher = Publisher(client, lease, self._vantages + self.name,
                                        self._tick, self._heartbeat, self._clock)
            # Re-read well within the staleness bound, so that a watch hung on a member that
            # stopped answering cannot make a live vantage look stale.
            resync = self._heartbeat
            self._collector = Collector(client, self._vantages, self._clock, self._on_bad,
                                        resync)
            overrides = Mirror(client, self._overrides, self._on_overrides, resync)
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(lease.run(), name="etcd lease")
                    tasks.create_task(self._election.run(), name="election")
                    tasks.create_task(self._publisher.run(), name="verdicts out")
                    tasks.create_task(self._collector.run(), name="verdicts in")
                    tasks.create_task(overrides.run(), name="overrides in")
            finally:
                # A clean stop hands leadership over now instead of after a TTL.
                try:
                    await asyncio.shield(lease.revoke())
                except EtcdUnavailable as exc:
                    log.warning("leadership not handed over at stop (it passes when the "
                                "lease lapses): %s", exc)

    # -- what planning asks each tick -----------------------------------------------------

    @property
    def role(self) -> Role:
        return "leader" if self.leading() else "follower"

    @property
    def epoch(self) -> int | None:
        return self._election.epoch if self._election is not None and self.leading() else None

    @property
    def leader(self) -> LeaderInfo | None:
        return None if self._election is None else self._election.leader

    def leading(self) -> bool:
        return self._election is not None and self._election.leading()

    async def still_leading(self) -> bool:
        """The fence every actuator write passes: a linearizable check that the leader key
        is still ours, within the lease's local bound."""
        return self._election is not None and await self._election.still_leading()

    def offer(self, views: Sequence[ClusterView], self_check_ok: bool, now: float) -> None:
        """This replica's own verdicts, for every other to see; and this tick's quorum view
        of everyone's, by which it judges whether its own view is trusted enough to lead
        (and by which it decides, if it leads: one view a tick, computed once)."""
        if self._publisher is not None:
            self._publisher.offer({v.name: ClusterVerdict(verdict_of(v.state), v.reason)
                                   for v in views}, self_check_ok)
        reports = {} if self._collector is None else dict(self._collector.reports)
        view = quorum_view(list(reports.values()), [v.name for v in views], now,
                           stale_after=self.stale_after, quorum=self.spec.quorum,
                           min_vantages=self.spec.min_vantages)
        self._judged = (view, reports)
        own = next((v for v in view.vantages if v.name == self.name), None)
        eligible = self_check_ok and (own is None or not own.excluded)
        if eligible != self.eligible:
            (log.info if eligible else log.warning)(
                "%s lead: %s", "may" if eligible else "will not",
                "our view agrees with the others again" if eligible else
                (own.reason if own is not None and own.reason else "our vantage checks fail"))
        self.eligible = eligible

    def decide(self, views: Sequence[ClusterView]) -> tuple[list[ClusterView], QuorumView]:
        """The leader's views with this tick's quorum applied (`offer` comes first), and the
        quorum view: why nothing may be decided (``unsure``), and whether the vantages agree
        (``agreed``)."""
        view, reports = self._judged
        self.view = view
        return apply_quorum(views, view, reports), view

    # -- the plan in etcd -------------------------------------------------------------------

    async def save_plan(self, document: bytes) -> bool:
        """Write the plan, fenced on our epoch; False when we no longer lead (or cannot
        tell), in which case nothing may be actuated."""
        epoch = self.epoch
        if self._client is None or epoch is None:
            return False
        try:
            return await self._client.put_if_created(self._keys["leader"], epoch,
                                                     self._keys["plan"], document)
        except EtcdUnavailable as exc:
            log.warning("saving the plan in etcd: %s", exc)
            return False

    async def load_plan(self, unless_at: int | None = None) -> tuple[bytes | None, int | None]:
        """The last leader's plan and its revision; (None, None) when there is none or etcd
        cannot say. With ``unless_at``, a plan still at that revision is not sent again
        ((None, the revision)): a follower reads a large plan only when it changed."""
        if self._client is None:
            return None, None
        try:
            if unless_at is not None:
                head, _ = await self._client.get(self._keys["plan"], keys_only=True)
                if head is not None and head.mod_revision == unless_at:
                    return None, unless_at
            kv, _ = await self._client.get(self._keys["plan"])
        except EtcdUnavailable as exc:
            log.warning("reading the plan from etcd: %s", exc)
            return None, None
        return (None, None) if kv is None else (kv.value, kv.mod_revision)

    # -- operator overrides ---------------------------------------------------------------

    async def put_override(self, key: str, value: bytes | None) -> bool:
        """Set (or, with None, lift) one override in etcd; False when etcd cannot be
        reached (the caller keeps it pending and tries again)."""
        if self._client is None:
            return False
        try:
            if value is None:
                await self._client.delete(self._overrides + key)
            else:
                await self._client.put(self._overrides + key, value)
        except EtcdUnavailable as exc:
            log.warning("override %s not written to etcd yet: %s", key, exc)
            return False
        return True

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now, wall = self._clock(), time.time()
        leader = self.leader
        reports = {} if self._collector is None else self._collector.reports
        if self.leading() and self.view is not None:
            vantages = [{"name": v.name, "fresh": v.fresh, "age_s": v.age_s,
                         "excluded": v.excluded, "reason": v.reason or None}
                        for v in self.view.vantages]
        else:  # a follower sees who reports; only the leader judges them
            vantages = [{"name": r.vantage, "fresh": now - r.received_at <= self.stale_after,
                         "age_s": round(max(0.0, now - r.received_at), 3), "excluded": False,
                         "reason": None} for r in sorted(reports.values(),
                                                         key=lambda r: r.vantage)]
        error = "not connected yet" if self._client is None else self._client.last_error
        return {"role": self.role,
                "etcd": {"ok": error is None, "error": error},
                "leader": None if leader is None else {
                    "vantage": leader.name,
                    "since": datetime.fromtimestamp(wall - (now - leader.since), UTC)
                    .isoformat(timespec="seconds").replace("+00:00", "Z")},
                "vantages": vantages}

    def cluster_vantages(self, cluster: str) -> dict[str, str]:
        reports = {} if self._collector is None else self._collector.reports
        return {name: r.clusters.get(cluster, ClusterVerdict("unknown")).verdict
                for name, r in sorted(reports.items())}
