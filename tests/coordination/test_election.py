"""Leases and the election against a real three-member etcd: one leader, a fenced epoch, a
takeover when the leader's lease lapses, and a deposed leader that knows it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from failover.config.addresses import split_hostport
from failover.coordination.etcd import EtcdClient
from failover.coordination.leader import Election, Lease
from tests.etcd import Cluster, running_etcd

TTL = 2.0
MARGIN = 0.5


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_etcd(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@dataclass
class Replica:
    name: str
    lease: Lease
    election: Election
    tasks: list[asyncio.Task[None]]

    def pause(self) -> None:
        """As SIGSTOP would, to this replica alone: nothing renews or watches."""
        for task in self.tasks:
            task.cancel()


@pytest.fixture
async def replicas(etcd: Cluster, request: pytest.FixtureRequest,
                   ) -> AsyncIterator[Callable[..., Replica]]:
    key = f"/t/{request.node.name}/leader"
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        made: list[Replica] = []

        def start(name: str, eligible: Callable[[], bool] = lambda: True) -> Replica:
            client = EtcdClient([split_hostport(e) for e in etcd.endpoints], 0.5, session)
            lease = Lease(client, TTL, loop.time)
            election = Election(client, lease, key, name, TTL, loop.time, MARGIN, eligible)
            tasks = [asyncio.create_task(lease.run(), name=f"{name} lease"),
                     asyncio.create_task(election.run(), name=f"{name} election")]
            made.append(Replica(name, lease, election, tasks))
            return made[-1]

        try:
            yield start
        finally:
            for replica in made:
                replica.pause()
            for replica in made:
                for task in replica.tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


async def until(group: list[Replica], condition: Callable[[], bool], within: float) -> float:
    """Re-check after every change of role or leader in ``group``; the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(within):
        while not condition():
            for replica in group:
                replica.election.changed.clear()
            waits = [asyncio.create_task(r.election.changed.wait()) for r in group]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
    return loop.time() - start


async def test_exactly_one_leader_whose_epoch_is_its_keys_create_revision(
        replicas: Callable[[str], Replica], etcd: Cluster) -> None:
    group = [replicas(name) for name in ("a", "b", "c")]
    await until(group, lambda: sum(r.election.leading() for r in group) == 1, 5)
    await until(group, lambda: all(r.election.leader is not None for r in group), 5)
    [leader] = [r for r in group if r.election.leading()]
    assert {r.election.leader.name for r in group if r.election.leader} == {leader.name}
    assert await leader.election.still_leading()
    assert leader.election.epoch is not None
    for other in group:
        if other is not leader:
            assert other.election.role == "follower"
            assert not await other.election.still_leading()


async def test_a_paused_leader_is_replaced_within_two_ttls_and_knows_it_is_deposed(
        replicas: Callable[[str], Replica]) -> None:
    group = [replicas(name) for name in ("a", "b")]
    await until(group, lambda: any(r.election.leading() for r in group), 5)
    [old] = [r for r in group if r.election.leading()]
    [new] = [r for r in group if r is not old]
    first_epoch = old.election.epoch
    old.pause()
    took = await until([new], new.election.leading, 2 * TTL + 1)
    assert took <= 2 * TTL + 1
    assert new.election.epoch is not None
    assert first_epoch is not None
    assert new.election.epoch > first_epoch
    # The paused one, woken: its local bound has run out, so it refuses to act at once...
    assert not old.election.leading()
    assert not await old.election.still_leading()


async def test_a_replica_outvoted_by_the_others_never_leads_and_steps_down(
        replicas: Callable[..., Replica]) -> None:
    """One whose own view the other vantages exclude does not campaign; a leader that comes
    to be excluded resigns (its key deleted) and another takes over at once."""
    may = {"a": True, "b": True}
    group = [replicas(name, lambda name=name: may[name]) for name in ("a", "b")]
    await until(group, lambda: any(r.election.leading() for r in group), 5)
    [first] = [r for r in group if r.election.leading()]
    [other] = [r for r in group if r is not first]
    may[first.name] = False
    took = await until(group, other.election.leading, TTL + 1)
    assert took < TTL, "waited for the lease to lapse instead of a resignation"
    assert first.election.role == "follower"
    await asyncio.sleep(TTL)  # it must not campaign back meanwhile
    assert other.election.leading()
    assert not first.election.leading()
