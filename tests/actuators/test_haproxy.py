"""The HAProxy actuator against a real HAProxy: weights set and read back, drain, drift, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from failover.actuators.base import Applied, PermanentActuatorError, TemporaryActuatorError
from failover.actuators.haproxy import HaproxyActuator
from failover.actuators.runner import ActuatorRunner
from failover.lab import Lab
from failover.metrics import Metrics
from tests.actuators.test_file import make_plan
from tests.haproxy import Haproxy, ServerRow, running_haproxy

MAPPING = {"lab-1": "lab-1", "lab-2": "lab-2", "lab-3": "lab-3"}
"""Cluster -> server: the test config names servers after the lab clusters."""
PLAN = {"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2}
WEIGHTS = {"lab-1": ServerRow(256, 0), "lab-2": ServerRow(154, 0), "lab-3": ServerRow(102, 0)}
"""What PLAN looks like in HAProxy: 256 x 0.3 / 0.5 = 153.6 -> 154, 102.4 -> 102."""


@pytest.fixture
async def haproxy(lab: Lab, tmp_path: Path) -> AsyncIterator[Haproxy]:
    servers = {c.name: c.http_url.removeprefix("http://") for c in lab.clusters}
    async with running_haproxy(tmp_path, servers) as running:
        yield running


def applied(shares: dict[str, float], version: int = 1) -> Applied:
    return Applied(make_plan(version, shares), 0.0)


def actuator_for(haproxy: Haproxy, **overrides: object) -> HaproxyActuator:
    options: dict[str, object] = {"backend": "app", "servers": MAPPING,
                                  "socket": haproxy.socket}
    options.update(overrides)
    return HaproxyActuator(**options)  # type: ignore[arg-type]


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll HAProxy's own state until ``check`` holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {within}s")
        await asyncio.sleep(0.02)


async def test_apply_sets_weights_read_back_from_haproxy(haproxy: Haproxy) -> None:
    """Shares 0.5/0.3/0.2 become weights 256/154/102, all ready, as HAProxy itself reports."""
    await actuator_for(haproxy).apply(applied(PLAN))
    assert await haproxy.servers() == WEIGHTS


async def test_apply_twice_is_idempotent(haproxy: Haproxy) -> None:
    """The same plan applied twice leaves the same state, raises nothing, shows no drift."""
    actuator = actuator_for(haproxy)
    await actuator.apply(applied(PLAN))
    await actuator.apply(applied(PLAN))
    assert await haproxy.servers() == WEIGHTS
    assert await actuator.drift(applied(PLAN)) == []


async def test_zero_share_drains_and_positive_share_readies(haproxy: Haproxy) -> None:
    """Share 0 sets weight 0 and drain; a later positive share sets it ready again."""
    actuator = actuator_for(haproxy)
    await actuator.apply(applied({"lab-1": 0.0, "lab-2": 0.6, "lab-3": 0.4}))
    servers = await haproxy.servers()
    assert servers["lab-1"] == ServerRow(0, 0x08)
    assert servers["lab-1"].drain
    assert (servers["lab-2"], servers["lab-3"]) == (ServerRow(256, 0), ServerRow(171, 0))
    await actuator.apply(applied(PLAN, version=2))
    assert await haproxy.servers() == WEIGHTS


async def test_drift_names_a_weight_changed_by_hand(haproxy: Haproxy) -> None:
    """After ``set server app/lab-2 weight 3`` by hand, drift names the server, value and want."""
    actuator = actuator_for(haproxy)
    await actuator.apply(applied(PLAN))
    assert await haproxy.command("set server app/lab-2 weight 3") == "\n"
    assert await haproxy.command("set server app/lab-3 state drain") == "\n"
    assert await actuator.drift(applied(PLAN)) == [
        "server app/lab-2 weight 3, want 154",
        "server app/lab-3 state drain, want ready",
    ]


async def test_runner_fixes_drift_and_counts_it(haproxy: Haproxy) -> None:
    """The runner finds a hand-made change on its next tick, counts it and restores the plan."""
    metrics = Metrics(CollectorRegistry())
    actuator = actuator_for(haproxy)
    runner = ActuatorRunner(actuator, metrics, retry_every=0.1)

    async def planned() -> bool:
        return await haproxy.servers() == WEIGHTS

    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, PLAN))
        await wait_for(planned, 5, "first apply")
        await haproxy.command("set server app/lab-2 weight 3")
        # A few ticks of 0.1 s; the bound only keeps a broken runner from hanging the test.
        await wait_for(planned, 5, "drift repaired")
        task.cancel()
    assert runner.last_drift == ["server app/lab-2 weight 3, want 154"]
    name = actuator.name
    drift = metrics.registry.get_sample_value("failover_actuator_drift_total", {"actuator": name})
    assert drift == 1
    assert metrics.registry.get_sample_value(
        "failover_actuator_applies_total", {"actuator": name, "result": "ok"}) == 2
    assert metrics.registry.get_sample_value(
        "failover_actuator_applied_plan_version", {"actuator": name}) == 1


async def test_unknown_server_is_a_permanent_error_naming_it(haproxy: Haproxy) -> None:
    """A mapped server HAProxy does not have fails with HAProxy's message and the command."""
    actuator = actuator_for(haproxy, servers={"lab-1": "lab-1", "lab-2": "nope"})
    refused = r"'set server app/nope weight \d+': No such server\."
    with pytest.raises(PermanentActuatorError, match=refused):
        await actuator.apply(applied({"lab-1": 0.5, "lab-2": 0.5}))
    assert await actuator.drift(applied({"lab-1": 0.5, "lab-2": 0.5})) == [
        "server app/nope missing from the backend"]


async def test_unknown_backend_is_a_permanent_error(haproxy: Haproxy) -> None:
    """A backend HAProxy does not have: HAProxy's 'No such backend.' and 'Can't find backend.'"""
    actuator = actuator_for(haproxy, backend="web")
    with pytest.raises(PermanentActuatorError, match=r"No such backend\."):
        await actuator.apply(applied(PLAN))
    with pytest.raises(PermanentActuatorError, match=r"refused 'show servers state web': "
                                            r"Can't find backend\."):
        await actuator.drift(applied(PLAN))


async def test_socket_below_admin_level_is_a_permanent_error(haproxy: Haproxy) -> None:
    """A ``level user`` socket refuses ``set server``: 'Permission denied', not retried."""
    actuator = actuator_for(haproxy, socket=haproxy.user_socket)
    with pytest.raises(PermanentActuatorError,
                       match=r"refused 6 of 6 commands: .*Permission denied"):
        await actuator.apply(applied(PLAN))


async def test_tcp_address_form_works(haproxy: Haproxy) -> None:
    """``address: host:port`` reaches the same runtime API over TCP: apply, then drift."""
    actuator = actuator_for(haproxy, socket=None, address=haproxy.admin_address)
    assert actuator.name == f"haproxy:app@{haproxy.admin_address}"
    await actuator.apply(applied({"lab-1": 0.2, "lab-2": 0.3, "lab-3": 0.5}))
    servers = await haproxy.servers()
    assert {name: row.weight for name, row in servers.items()} == {
        "lab-1": 102, "lab-2": 154, "lab-3": 256}
    await haproxy.command("set server app/lab-1 weight 7")
    assert await actuator.drift(applied({"lab-1": 0.2, "lab-2": 0.3, "lab-3": 0.5})) == [
        "server app/lab-1 weight 7, want 102"]


async def test_stopped_haproxy_is_a_temporary_error(haproxy: Haproxy) -> None:
    """Once HAProxy is gone, apply and drift fail as temporary errors (retried)."""
    actuator = actuator_for(haproxy)
    await actuator.apply(applied(PLAN))
    await haproxy.stop()
    with pytest.raises(TemporaryActuatorError, match="HAProxy runtime API"):
        await actuator.apply(applied(PLAN))
    with pytest.raises(TemporaryActuatorError, match="HAProxy runtime API"):
        await actuator.drift(applied(PLAN))


async def test_plan_without_traffic_for_any_server_keeps_haproxy_as_it_is(
        haproxy: Haproxy) -> None:
    """All mapped shares 0: nothing is drained (that would be a total outage); no drift."""
    actuator = actuator_for(haproxy)
    await actuator.apply(applied(PLAN))
    nothing = {"lab-1": 0.0, "lab-2": 0.0, "lab-3": 0.0, "elsewhere": 1.0}
    await actuator.apply(applied(nothing, version=2))
    assert await haproxy.servers() == WEIGHTS
    assert actuator.kept == 1
    assert await actuator.drift(applied(nothing, version=2)) == []
