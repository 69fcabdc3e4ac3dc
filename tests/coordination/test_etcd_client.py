"""The etcd gateway client against a real three-member etcd 3.4 on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from failover.config.addresses import Endpoint, split_hostport
from failover.coordination.etcd import EtcdClient, EtcdUnavailable, Event
from tests.etcd import Cluster, running_etcd

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_etcd(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


def endpoints(cluster: Cluster) -> list[Endpoint]:
    return [split_hostport(e) for e in cluster.endpoints]


@pytest.fixture
async def client(etcd: Cluster) -> AsyncIterator[EtcdClient]:
    async with aiohttp.ClientSession() as session:
        yield EtcdClient(endpoints(etcd), TIMEOUT, session)


async def test_only_one_create_wins_and_a_retry_of_the_winner_counts_as_made(
        client: EtcdClient, request: pytest.FixtureRequest) -> None:
    key = f"/t/{request.node.name}/leader"
    mine, _ = await client.grant(5)
    theirs, _ = await client.grant(5)
    made, kv = await client.create(key, b"a", mine)
    assert made
    assert kv is not None
    assert (kv.value, kv.lease) == (b"a", mine)
    lost, held = await client.create(key, b"b", theirs)
    assert not lost
    assert held == kv  # the loser learns who holds it, and since when (the epoch)
    again, same = await client.create(key, b"a", mine)  # as after a timed-out first try
    assert again
    assert same == kv


async def test_a_fenced_put_fails_once_the_guard_key_is_someone_elses(
        client: EtcdClient, request: pytest.FixtureRequest) -> None:
    guard, plan = f"/t/{request.node.name}/leader", f"/t/{request.node.name}/plan"
    first, _ = await client.grant(5)
    _, kv = await client.create(guard, b"a", first)
    assert kv is not None
    epoch = kv.create_revision
    assert await client.put_if_created(guard, epoch, plan, b"v1")
    await client.revoke(first)  # a lease that lapsed: its key is gone with it
    assert (await client.get(guard))[0] is None
    second, _ = await client.grant(5)
    _, taken = await client.create(guard, b"b", second)
    assert taken is not None
    assert taken.create_revision > epoch
    assert not await client.put_if_created(guard, epoch, plan, b"stale")
    stored, _ = await client.get(plan)
    assert stored is not None
    assert stored.value == b"v1"


async def test_keepalive_reports_the_ttl_left_and_zero_once_revoked(
        client: EtcdClient) -> None:
    lease, granted = await client.grant(3)
    assert granted >= 3
    assert 0 < await client.keepalive(lease) <= granted
    await client.revoke(lease)
    assert await client.keepalive(lease) == 0
    await client.revoke(lease)  # already gone: not an error


async def test_a_watch_sees_the_delete_when_the_holders_lease_ends(
        client: EtcdClient, request: pytest.FixtureRequest) -> None:
    key = f"/t/{request.node.name}/leader"
    lease, _ = await client.grant(5)
    _, kv = await client.create(key, b"a", lease)
    assert kv is not None
    seen: list[Event] = []
    in_place = asyncio.Event()

    async def watch() -> None:
        async for batch in client.watch(key, kv.mod_revision + 1):
            in_place.set()  # the first batch, empty, says the watch is in place
            seen.extend(batch)
            if any(e.kind == "delete" for e in batch):
                return

    watching = asyncio.create_task(watch())
    await asyncio.wait_for(in_place.wait(), 5)
    await client.revoke(lease)
    await asyncio.wait_for(watching, 5)
    assert [(e.kind, e.kv.key) for e in seen] == [("delete", key)]


async def test_calls_go_on_to_a_member_that_answers_and_fail_in_bounded_time_without_one(
        tmp_path: Path) -> None:
    with running_etcd(tmp_path) as cluster:
        async with aiohttp.ClientSession() as session:
            client = EtcdClient(endpoints(cluster), TIMEOUT, session)
            await client.put("/t/x", b"1")
            cluster.members[0].stop_process()  # the member the client used so far
            assert await client.put("/t/x", b"2") > 0
            for member in cluster.members[1:]:
                member.pause()  # no quorum, and nobody answers at all
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(EtcdUnavailable, match="no answer in time"):
                await client.get("/t/x")
            assert loop.time() - started < TIMEOUT * 3 + 0.5
