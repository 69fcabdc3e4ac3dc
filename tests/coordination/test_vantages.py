"""Verdicts through a real etcd: published under each replica's lease, collected by watch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from failover.config.addresses import split_hostport
from failover.coordination.etcd import EtcdClient
from failover.coordination.leader import Lease
from failover.coordination.quorum import ClusterVerdict
from failover.coordination.vantages import Collector, Publisher, encode
from tests.etcd import Cluster, running_etcd

TTL, EVERY, HEARTBEAT = 2.0, 0.1, 0.5
OK, DOWN = ClusterVerdict("passing", "ok"), ClusterVerdict("failing", "dns timeout")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_etcd(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


class Rig:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.loop = asyncio.get_running_loop()
        self.tasks: list[asyncio.Task[None]] = []
        self.bad: list[tuple[str, str]] = []
        self.collector = Collector(client, prefix, self.loop.time,
                                   lambda v, why: self.bad.append((v, why)))
        self.start(self.collector.run())

    def start(self, work: object) -> None:
        self.tasks.append(asyncio.create_task(work))  # type: ignore[arg-type]

    def replica(self, name: str) -> tuple[Lease, Publisher]:
        lease = Lease(self.client, TTL, self.loop.time)
        publisher = Publisher(self.client, lease, self.prefix + name, EVERY, HEARTBEAT,
                              self.loop.time)
        self.start(lease.run())
        self.start(publisher.run())
        return lease, publisher

    async def until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        """Re-check at every report the collector receives or drops."""
        async with asyncio.timeout(within):
            while not condition():
                self.collector.changed.clear()
                await self.collector.changed.wait()


@pytest.fixture
async def rig(etcd: Cluster, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async with aiohttp.ClientSession() as session:
        client = EtcdClient([split_hostport(e) for e in etcd.endpoints], 0.5, session)
        made = Rig(client, f"/t/{request.node.name}/vantage/")
        try:
            yield made
        finally:
            for task in made.tasks:
                task.cancel()
            for task in made.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_each_replicas_verdicts_reach_the_collector_and_follow_changes(rig: Rig) -> None:
    _, a = rig.replica("a")
    _, b = rig.replica("b")
    a.offer({"c1": OK, "c2": OK}, True)
    b.offer({"c1": DOWN, "c2": OK}, False)
    await rig.until(lambda: set(rig.collector.reports) == {"a", "b"})
    assert rig.collector.reports["b"].clusters["c1"] == DOWN
    assert not rig.collector.reports["b"].self_check_ok
    a.offer({"c1": DOWN, "c2": OK}, True)
    await rig.until(lambda: rig.collector.reports["a"].clusters["c1"] == DOWN)


async def test_an_unchanged_report_is_renewed_by_heartbeat_so_it_stays_fresh(rig: Rig) -> None:
    _, a = rig.replica("a")
    a.offer({"c1": OK}, True)
    await rig.until(lambda: "a" in rig.collector.reports)
    first = rig.collector.reports["a"].received_at
    await rig.until(lambda: rig.collector.reports["a"].received_at > first, HEARTBEAT * 4)
    assert rig.collector.reports["a"].received_at - first <= HEARTBEAT + EVERY + 0.5


async def test_a_replica_whose_lease_ends_drops_out(rig: Rig) -> None:
    lease, a = rig.replica("a")
    a.offer({"c1": OK}, True)
    await rig.until(lambda: "a" in rig.collector.reports)
    await lease.revoke()
    await rig.until(lambda: "a" not in rig.collector.reports)


async def test_a_bad_value_is_reported_and_the_last_good_report_kept(rig: Rig) -> None:
    _, a = rig.replica("a")
    a.offer({"c1": OK}, True)
    await rig.until(lambda: "a" in rig.collector.reports)
    await rig.client.put(rig.prefix + "x", b"{not json")
    await rig.client.put(rig.prefix + "a", b'{"clusters": {"c1": {"verdict": "maybe"}}}')
    await rig.until(lambda: len(rig.bad) == 2)
    assert rig.bad[0][0] == "x"
    assert rig.bad[0][1].startswith("not JSON")
    assert rig.bad[1] == ("a", "clusters.c1.verdict: expected passing, failing or unknown, "
                               "got 'maybe'")
    assert rig.collector.reports["a"].clusters["c1"] == OK


async def test_a_lease_etcd_no_longer_has_is_replaced_and_the_report_published_again(
        rig: Rig) -> None:
    """As after a pause longer than the TTL: the next put names a lease etcd has dropped;
    that is a lost lease (a new one is granted and the report comes back), not a crash."""
    lease, a = rig.replica("a")
    a.offer({"c1": OK}, True)
    await rig.until(lambda: "a" in rig.collector.reports)
    old = lease.id
    assert old is not None
    await rig.client.revoke(old)  # behind the lease keeper's back
    await rig.until(lambda: "a" not in rig.collector.reports)
    a.offer({"c1": DOWN}, True)  # the next put meets the dropped lease
    await rig.until(lambda: "a" in rig.collector.reports, within=TTL * 3)
    assert lease.id is not None
    assert lease.id != old
    assert rig.collector.reports["a"].clusters["c1"] == DOWN


async def test_a_watch_on_a_member_that_stops_answering_is_replaced(tmp_path: Path) -> None:
    """The member the collector watches through is paused (a partition without resets):
    within a resync period the collector reads from another member and sees new reports."""
    with running_etcd(tmp_path) as cluster:
        async with aiohttp.ClientSession() as session:
            endpoints = [split_hostport(e) for e in cluster.endpoints]
            watcher = EtcdClient(endpoints, 0.5, session)  # talks to member 0 first
            # Long enough to ride out the election the pause may start (member 0 may lead).
            writer = EtcdClient(endpoints[1:], 3.0, session)
            collector = Collector(watcher, "/v/", asyncio.get_running_loop().time,
                                  lambda v, why: None, resync_every=1.0)
            task = asyncio.create_task(collector.run())
            try:
                await writer.put("/v/a", encode({"c1": OK}, True, 1))
                async with asyncio.timeout(5):
                    while "a" not in collector.reports:
                        collector.changed.clear()
                        await collector.changed.wait()
                cluster.members[0].pause()
                await writer.put("/v/b", encode({"c1": DOWN}, True, 1))
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with asyncio.timeout(5):
                    while "b" not in collector.reports:
                        collector.changed.clear()
                        await collector.changed.wait()
                assert loop.time() - started <= 1.0 + 3 * 0.5 + 0.5
            finally:
                cluster.members[0].resume()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
