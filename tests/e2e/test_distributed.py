"""Three replicas of the daemon (processes) on a real three-member etcd, probing the lab:
one leader, a quorum deciding, a takeover when the leader is paused, and a deposed leader
that never writes. The data plane is one weights.json that every replica would write."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import pytest

from failover.lab import Lab
from tests.e2e.test_daemon_with_lab import Daemon, wait_until
from tests.etcd import Cluster, running_etcd
from tests.haproxy import running_haproxy
from tests.knot import KEY_NAME, NAME, ZONE, Knot, running_knot
from tests.servers import free_port

TTL, TIMEOUT_ETCD = 2.0, 0.5
INTERVAL, TIMEOUT, TICK, FALL, RISE = 0.5, 0.5, 0.2, 3, 2
DEAD = "127.0.0.1:9"
"""A TCP address nobody listens on: a vantage whose config points a check here sees the
cluster fail, as if its own path there were broken."""
TAKEOVER = 2 * TTL + 2.0
"""A paused leader's lease lapses within the TTL (plus etcd's election timeout when it moves
its own leader); the follower's watch sees the key go, it campaigns, plans, and writes."""


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_etcd(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


def config(folder: Path, lab: Lab, etcd: Cluster, name: str, prefix: str,
           weights: Path, broken: frozenset[str] = frozenset(),
           slow_start: float = 1.0, actuators: str = "",
           by_dns: frozenset[str] = frozenset()) -> tuple[Path, int, int]:
    """Replica ``name``'s config; checks of the clusters in ``broken`` point at a dead port
    (this vantage's own view of them fails); those in ``by_dns`` are checked by their DNS
    alone (an HTTP fault there is invisible from this vantage)."""
    port, admin = free_port(), free_port()

    def check(c: Any) -> str:
        if c.name in by_dns:
            return (f'    dns: {{server: "{c.dns_address}", '
                    f'names: [api.default.svc.cluster.local], expect: ["{c.answer}"]}}\n')
        target = DEAD if c.name in broken else c.http_url.removeprefix("http://")
        return f'    checks: [{{tcp: "{target}"}}]\n'

    clusters = "".join(f"  - name: {c.name}\n    weight: {weight}\n" + check(c)
                       for c, weight in zip(lab.clusters, (50, 30, 20), strict=True))
    path = folder / f"{name}.yaml"
    endpoints = ", ".join(f'"{e}"' for e in etcd.endpoints)
    path.write_text(textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{port}", admin: "127.0.0.1:{admin}"}}
        state_dir: state-{name}
        probing: {{interval: {INTERVAL}, timeout: {TIMEOUT}, jitter: 0.2, rise: {RISE},
                  fall: {FALL}, budget: {{per_target_per_second: 10}}}}
        policy: {{tick: {TICK}, min_healthy_fraction: 0.3, max_shift_per_tick: 1,
                 recovery: {{slow_start: {slow_start}}}}}
        coordination:
          etcd: {{endpoints: [{endpoints}], prefix: {prefix}, lease_ttl: {TTL}s,
                 timeout: {TIMEOUT_ETCD}s}}
          vantage: {name}
          min_vantages: 2
        actuators:
          - {{type: file, path: {weights}}}
        """) + textwrap.indent(actuators, "  ") + "clusters:\n" + clusters)
    return path, port, admin


TOKEN = "distributed-test-token"  # noqa: S105 - a test token


class Replica(Daemon):
    name: str
    log: Path
    admin_url: str

    async def admin(self, path: str, body: Mapping[str, Any] | None = None,
                    method: str = "POST") -> int:
        async with aiohttp.ClientSession() as session, session.request(
                method, self.admin_url + path, json=dict(body or {}),
                headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            return response.status

    async def names(self) -> set[str]:
        try:
            return {c["name"] for c in (await self.status())["clusters"]}
        except (OSError, ValueError, KeyError):
            return set()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    async def role(self) -> str | None:
        try:
            return str((await self.status())["role"])
        except (OSError, ValueError, KeyError):
            return None


@pytest.fixture
async def fleet(lab: Lab, etcd: Cluster, tmp_path: Path, request: pytest.FixtureRequest,
                ) -> AsyncIterator[Callable[..., Any]]:
    """Starts replicas; every one is killed at the end (resumed first if paused)."""
    prefix = f"/t/{request.node.name}"
    weights = tmp_path / "weights.json"
    started: list[Replica] = []

    async def start(name: str, broken: frozenset[str] = frozenset(),
                    slow_start: float = 1.0, actuators: str = "",
                    by_dns: frozenset[str] = frozenset()) -> Replica:
        path, port, admin = config(tmp_path, lab, etcd, name, prefix, weights, broken,
                                   slow_start, actuators, by_dns)
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "failover", "run", "-c", str(path), "--log-format",
                "json", stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1",
                                         "FAILOVER_ADMIN_TOKEN": TOKEN})
        replica = Replica(process, f"http://127.0.0.1:{port}", tmp_path)
        replica.weights, replica.name, replica.log = weights, name, log
        replica.admin_url = f"http://127.0.0.1:{admin}"
        started.append(replica)
        return replica

    try:
        yield start
    finally:
        for replica in started:
            if replica.process.returncode is None:
                replica.resume()
                replica.process.kill()
                await replica.process.wait()
        for replica in started:
            print(f"--- {replica.name}\n{replica.log.read_text()[-3000:]}")


def epoch(weights: Path) -> int | None:
    try:
        value = json.loads(weights.read_text()).get("epoch")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) else None


async def leader_of(group: list[Replica]) -> Replica:
    roles = {r.name: await r.role() for r in group}
    [leader] = [r for r in group if roles[r.name] == "leader"]
    return leader


async def exactly_one_leader(group: list[Replica]) -> bool:
    roles = [await r.role() for r in group]
    return roles.count("leader") == 1 and roles.count("follower") == len(group) - 1


def shares(status: Mapping[str, Any]) -> dict[str, float]:
    return {c["name"]: c["share"] for c in status["clusters"]}


async def test_one_leader_writes_under_its_epoch_and_a_paused_one_is_replaced(
        fleet: Callable[..., Any]) -> None:
    group = [await fleet(name) for name in ("a", "b", "c")]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    leader = await leader_of(group)
    weights = group[0].weights
    await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan written")
    first = epoch(weights)
    assert first is not None
    for replica in group:  # every follower knows who leads, and shows the leader's plan
        status = await replica.status()
        assert status["leader"]["vantage"] == leader.name
        assert {v["name"] for v in status["vantages"]} == {"a", "b", "c"}
        # ... and so does its status page.
        async with aiohttp.ClientSession() as session, session.get(replica.url + "/") as r:
            page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", await r.text()))
        assert f"role {status['role']} · leader {leader.name} since" in page
        if replica is leader:  # the one that judges the vantages
            assert all(f"{name} fresh" in page for name in ("a", "b", "c")), page
    before = leader.file_shares()
    assert before == pytest.approx({"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2})

    leader.pause()
    others = [r for r in group if r is not leader]
    took = await wait_until(lambda: exactly_one_leader(others), TAKEOVER, "a new leader")
    await wait_until(lambda: _true((epoch(weights) or 0) > first), 5, "the new epoch on disk")
    # Static takeover: the new leader re-applied the last plan, it did not start over.
    assert leader.file_shares() == pytest.approx(before)
    print(f"takeover in {took:.2f}s (bound {TAKEOVER:g}s)")

    taken = epoch(weights)
    leader.resume()
    await wait_until(lambda: _eq(leader.role(), "follower"), 10, "the old leader follows")
    assert await exactly_one_leader(group), [await r.role() for r in group]
    assert epoch(weights) == taken  # the deposed leader wrote nothing over it


async def zone_epoch(knot: Knot) -> int | None:
    query = dns.message.make_query(f"_failover-epoch.{ZONE}", "TXT")
    host, port = knot.address.rsplit(":", 1)
    reply = await dns.asyncquery.tcp(query, host, port=int(port), timeout=2)
    for rrset in reply.answer:
        for rdata in rrset:
            return int(b"".join(rdata.strings))
    return None


async def test_a_resumed_leader_writes_nothing_to_knot_or_haproxy(
        fleet: Callable[..., Any], lab: Lab, tmp_path: Path) -> None:
    """With DNS (knot, fenced by its epoch record) and HAProxy (fenced by the runner alone)
    beside the file: after a takeover, the paused leader resumed writes nothing to any of
    them, by its own count and by theirs."""
    servers = {c.name: c.http_url.removeprefix("http://") for c in lab.clusters}
    addresses = {c.name: [f"192.0.2.{i}"] for i, c in enumerate(lab.clusters, start=1)}
    with running_knot(tmp_path / "knot") as knot:
        async with running_haproxy(tmp_path / "haproxy", servers) as haproxy:
            secret = knot.write_secret(tmp_path / "tsig.key")
            actuators = (
                f"- {{type: dns, server: '{knot.address}', zone: {ZONE}, name: {NAME}, "
                f"tsig: {{name: {KEY_NAME}, secret_file: {secret}}}, "
                f"addresses: {json.dumps(addresses)}}}\n"
                f"- {{type: haproxy, socket: {haproxy.socket}, backend: app, "
                f"servers: {json.dumps({n: n for n in servers})}}}\n")
            group = [await fleet(name, actuators=actuators) for name in ("a", "b", "c")]
            await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
            leader = await leader_of(group)
            await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan")
            await wait_until(lambda: _eq(zone_epoch(knot), epoch(leader.weights)), 10,
                             "the leader's epoch in the zone")
            applied = await leader_applies(leader)  # steady: it writes nothing new now
            old = epoch(leader.weights) or 0
            leader.pause()
            others = [r for r in group if r is not leader]
            await wait_until(lambda: exactly_one_leader(others), TAKEOVER, "a new leader")
            new_epoch = await _wait_value(lambda: zone_epoch(knot), lambda v: v is not None
                                          and v > old and v == epoch(leader.weights))
            weights, updates = await haproxy.servers(), knot.updates_processed()
            leader.resume()
            await wait_until(lambda: _eq(leader.role(), "follower"), 10, "it follows")
            await asyncio.sleep(2 * TTL)  # watching: it must not write meanwhile
            assert await zone_epoch(knot) == new_epoch
            assert knot.updates_processed() == updates
            assert await haproxy.servers() == weights
            assert await leader_applies(leader) == applied  # nothing written, by its count
            # What it still held to write met the zone's newer epoch at its next look.
            assert await fenced_refusals(leader) >= 1


async def counted(replica: Replica, prefix: str, also: str = "") -> float:
    """The sum of the replica's metric samples whose line starts with ``prefix`` (and holds
    ``also``)."""
    async with aiohttp.ClientSession() as session, \
            session.get(replica.url + "/metrics") as reply:
        lines = (await reply.text()).splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith(prefix) and also in line)


async def leader_applies(replica: Replica) -> float:
    """Successful applies the replica counted, over all its actuators."""
    return await counted(replica, "failover_actuator_applies_total{", 'result="ok"')


async def fenced_refusals(replica: Replica) -> float:
    return await counted(replica, "failover_fenced_writes_refused_total{")


async def _wait_value(read: Callable[[], Any], good: Callable[[Any], bool],
                      within: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await read()
        if good(value):
            return value
        if loop.time() > deadline:
            pytest.fail(f"no good value within {within:g}s, last {value!r}")
        await asyncio.sleep(0.1)  # polling outside servers


async def test_kill_9_of_the_leader_mid_ramp_the_next_one_carries_the_ramp_on(
        fleet: Callable[..., Any], lab: Lab) -> None:
    """The plan with its ramps lives in etcd: after kill -9 of the leader during lab-1's
    slow start, the next leader applies plans within 2 x TTL, and lab-1's share neither
    snaps back to full nor starts the ramp over."""
    group = [await fleet(name, slow_start=8.0) for name in ("a", "b", "c")]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    leader = await leader_of(group)
    weights = group[0].weights
    await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan written")
    await lab.set_fault("lab-1", http="refuse")
    await wait_until(lambda: _true(leader.file_shares().get("lab-1") == 0), 10, "evacuated")
    await lab.set_fault("lab-1", http="ok")
    await wait_until(lambda: _true(leader.file_shares().get("lab-1", 0) > 0.05), 15,
                     "mid-ramp")
    killed_at, first = leader.file_shares()["lab-1"], epoch(weights)
    assert killed_at < 0.45, "killed before the ramp ended"
    leader.process.kill()
    await leader.process.wait()
    others = [r for r in group if r is not leader]
    took = await wait_until(lambda: _true((epoch(weights) or 0) > (first or 0)), TAKEOVER,
                            "a plan written under the next leader's epoch")
    seen = []

    async def full() -> bool:
        share = others[0].file_shares().get("lab-1", 0.0)
        seen.append(share)
        return share == pytest.approx(0.5)

    await wait_until(full, 20, "lab-1 back to its full share")
    assert min(seen) >= killed_at - 1e-6, f"the ramp went back or started over: {seen}"
    assert seen[0] < 0.5 - 1e-6, "snapped back to the full share at the takeover"
    print(f"kill -9 at share {killed_at:.3f}; a new leader wrote in {took:.2f}s")


async def test_a_drain_on_a_follower_reaches_the_leader_and_survives_a_takeover(
        fleet: Callable[..., Any]) -> None:
    """The operator reaches any replica: the drain goes through etcd, the leader acts on it,
    and the next leader keeps it; the undrain, on yet another replica, lifts it."""
    group = [await fleet(name) for name in ("a", "b", "c")]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    leader = await leader_of(group)
    follower = next(r for r in group if r is not leader)
    await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan written")
    assert await follower.admin("/v1/clusters/lab-2/drain", {"reason": "bad deploy"}) == 200
    await wait_until(lambda: _true(leader.file_shares().get("lab-2") == 0), 10,
                     "lab-2 drained by the leader")
    leader.pause()
    others = [r for r in group if r is not leader]
    await wait_until(lambda: exactly_one_leader(others), TAKEOVER, "a new leader")
    new = await leader_of(others)
    status = await new.status()
    lab2 = next(c for c in status["clusters"] if c["name"] == "lab-2")
    assert (lab2["state"], lab2["share"]) == ("drained", 0)
    assert status["overrides"]["drains"]["lab-2"]["reason"] == "bad deploy"
    third = next(r for r in others if r is not new)
    assert await third.admin("/v1/clusters/lab-2/undrain") == 200
    await wait_until(lambda: _true(leader.file_shares().get("lab-2", 0) > 0), 15,
                     "lab-2 back once undrained")
    leader.resume()


async def test_a_cluster_registered_on_a_follower_runs_everywhere_and_leaves_from_another(
        fleet: Callable[..., Any], lab: Lab) -> None:
    """Registrations live in etcd: taken on one follower, the cluster is probed by every
    replica and planned by the leader; deregistered on the other follower, it leaves all."""
    group = [await fleet(name) for name in ("a", "b", "c")]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    leader = await leader_of(group)
    one, other = (r for r in group if r is not leader)
    await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan written")
    new = await lab.add()
    body = {"weight": 40, "checks": [{"tcp": new.http_url.removeprefix("http://")}]}
    assert await one.admin(f"/v1/clusters/{new.name}", body, "PUT") == 201

    async def everywhere() -> bool:
        return all([new.name in await r.names() for r in group])

    await wait_until(everywhere, 10, "the registration on every replica")
    await wait_until(lambda: _true(leader.file_shares().get(new.name, 0) > 0), 20,
                     "the leader planning it")
    assert await other.admin(f"/v1/clusters/{new.name}", None, "DELETE") == 202

    async def nowhere() -> bool:
        return all([new.name not in await r.names() for r in group])

    await wait_until(nowhere, 20, "the cluster gone from every replica")
    # Removed at share 0: the data plane carried nothing to it by then.
    assert leader.file_shares().get(new.name, 0.0) == 0.0


async def test_a_cluster_fails_only_when_a_quorum_of_vantages_sees_it_fail(
        fleet: Callable[..., Any]) -> None:
    """lab-1 fails from a alone: nothing moves. lab-2 fails from a and b: it is evacuated.
    d sees everything failing while the others do not: it is excluded, with its reason, and
    it does not lead (outvoted, it steps down if it won the first election)."""
    everything = frozenset({"lab-1", "lab-2", "lab-3"})
    group = [await fleet("a", frozenset({"lab-1", "lab-2"})),
             await fleet("b", frozenset({"lab-2"})), await fleet("c"),
             await fleet("d", everything)]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    expected = {"a": "failing", "b": "failing", "c": "passing", "d": "failing"}
    leader = group[0]

    async def settled() -> bool:
        nonlocal leader
        try:
            leader = await leader_of(group)  # d, outvoted, never leads for long
        except ValueError:  # none, or two for an instant
            return False
        status = await leader.status()
        lab2 = next((c for c in status["clusters"] if c["name"] == "lab-2"), {})
        return shares(status).get("lab-2") == 0 and lab2.get("vantages") == expected and {
            v["name"]: v["excluded"] for v in status["vantages"]}.get("d") is True

    try:
        await wait_until(settled, 20, "lab-2 evacuated and d excluded")
    finally:
        print(json.dumps(await leader.status(), indent=1)[:6000])
    assert leader.name != "d", "the vantage everyone outvotes leads"
    status = await leader.status()
    assert shares(status)["lab-1"] > 0, "failing from one vantage of three moved traffic"
    lab2 = next(c for c in status["clusters"] if c["name"] == "lab-2")
    assert lab2["state"] == "unhealthy"
    assert lab2["vantages"] == expected
    [d] = [v for v in status["vantages"] if v["name"] == "d"]
    assert d["reason"].startswith("sees 3 of 3 clusters failing where the others see ")


DETECTION = FALL * INTERVAL * 1.2 + TIMEOUT + TICK
"""fall results, each up to a jittered interval apart, the last one's timeout, a tick."""


async def test_a_fault_seen_from_two_of_three_vantages_is_acted_on_within_its_bound(
        fleet: Callable[..., Any], lab: Lab) -> None:
    """lab-2's service fails; c checks lab-2 by its DNS only, so only a and b see it. It is
    evacuated within the detection bound, plus one publish interval (a tick) for the
    verdicts to reach the leader, plus the leader's tick."""
    group = [await fleet("a"), await fleet("b"), await fleet("c", by_dns=frozenset({"lab-2"}))]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    leader = await leader_of(group)
    await wait_until(lambda: _true(len(leader.file_shares()) == 3), 15, "a plan written")
    await lab.set_fault("lab-2", http="refuse")
    bound = DETECTION + TICK + TICK + 1.0  # + slack for processes on a loaded machine
    took = await wait_until(lambda: _true(leader.file_shares().get("lab-2") == 0), bound,
                            "lab-2 evacuated")
    lab2 = next(c for c in (await leader.status())["clusters"] if c["name"] == "lab-2")
    assert lab2["vantages"] == {"a": "failing", "b": "failing", "c": "passing"}
    print(f"evacuated {took:.2f}s after the fault (bound {bound:.2f}s)")


async def test_without_an_etcd_quorum_nothing_is_written(
        fleet: Callable[..., Any], etcd: Cluster, lab: Lab) -> None:
    """Two of three etcd members paused while a cluster fails: the leader's lease runs out,
    nobody writes; when etcd is back, the plan moves on from where it was."""
    group = [await fleet(name) for name in ("a", "b")]
    await wait_until(lambda: exactly_one_leader(group), 20, "exactly one leader")
    weights = group[0].weights
    await wait_until(lambda: _true(len(group[0].file_shares()) == 3), 15, "a plan written")
    written = weights.read_bytes()
    for member in etcd.members[1:]:
        member.pause()
    try:
        await lab.set_fault("lab-1", http="refuse")

        async def everyone_says_why() -> bool:
            statuses = [await r.status() for r in group]
            return all(s["role"] == "follower" and not s["etcd"]["ok"] and s["etcd"]["error"]
                       for s in statuses)

        await wait_until(everyone_says_why, 3 * TTL, "every replica following, saying why")
        await asyncio.sleep(2 * TTL)  # watching: nothing may be written meanwhile
        assert weights.read_bytes() == written
    finally:
        for member in etcd.members[1:]:
            member.resume()
    await wait_until(lambda: exactly_one_leader(group), 20, "one leader again")
    await wait_until(lambda: _true(group[0].file_shares().get("lab-1") == 0), 20,
                     "lab-1 evacuated once etcd is back")


async def _true(value: bool) -> bool:
    return value


async def _eq(value: Any, expected: object) -> bool:
    return bool(await value == expected)
