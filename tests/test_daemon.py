"""The daemon in process on a fake clock (looptime), through its injection points: fake probe
targets (``probes=``) and a spying planner (``planner=``). Minutes of its life take
milliseconds and every bound is exact; the real network is the e2e tests' business."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import textwrap
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from failover.config import Job, load, parse
from failover.config.actuators import FileActuator as FileActuatorConfig
from failover.daemon import Daemon, TaskDied, build_actuators
from failover.model import Plan, ProbeResult
from failover.planner import plan as make_plan
from failover.probes.base import ProbeContext

pytestmark = pytest.mark.looptime

INTERVAL, TIMEOUT, JITTER, TICK, RISE, FALL = 2.0, 0.8, 0.2, 1.0, 2, 3
WITHIN = 60.0
"""Fake seconds any single wait may take before the test fails."""
WEIGHTS = {"lab-1": 50, "lab-2": 30, "lab-3": 20}
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
PORTS = {"lab-1": 1001, "lab-2": 1002, "lab-3": 1003}


# -- fakes -------------------------------------------------------------------------------------

class FakeTargets:
    """Stands in for the network: each cluster's TCP check passes in 5 ms unless the cluster
    is ``down`` (refused), ``silent`` (never answers: the probe's deadline ends it) or
    ``broken`` (the probe code returns garbage, as a bug would)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.silent: set[str] = set()
        self.broken = False
        self.probed: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()

    async def tcp(self, job: Job, ctx: ProbeContext) -> ProbeResult:
        await ctx.permit()
        self.probed[job.cluster] += 1
        self.in_flight[job.cluster] += 1
        try:
            if job.cluster in self.silent:
                await asyncio.Event().wait()
            await asyncio.sleep(0.005)
        finally:
            self.in_flight[job.cluster] -= 1
        if self.broken:
            return None  # type: ignore[return-value]
        if job.cluster in self.down:
            return ProbeResult.failed(0.005, "refused", "connection refused")
        return ProbeResult.passed(0.005)


class PlanSpy:
    """Stands in for ``make_plan``: keeps each plan made, wakes waiters on every planner tick.

    ``failures`` first calls raise, as a planner bug would.
    """

    def __init__(self, real: Callable[..., Plan], failures: int = 0) -> None:
        self.real = real
        self.failures = failures
        self.calls = 0
        self.made: list[Plan] = []
        self._tick = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Plan:
        self.calls += 1
        # Called on the planner's thread: the event is the loop's, set from the loop. The
        # daemon publishes before any waiter runs again.
        if self._loop is None:
            self._tick.set()
        else:
            self._loop.call_soon_threadsafe(self._tick.set)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("injected planner bug")
        plan = self.real(*args, **kwargs)
        self.made.append(plan)
        return plan

    async def until(self, condition: Callable[[], bool], what: str,
                    within: float = WITHIN) -> None:
        """Re-check ``condition`` after every planner tick; fail unless it holds ``within``."""
        self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self._tick.clear()
                    await self._tick.wait()
        except TimeoutError:
            pytest.fail(f"{what}: not within {within:g} fake seconds")


# -- config ------------------------------------------------------------------------------------

def config_text(weights: Mapping[str, object], extra: Mapping[str, str] | None = None) -> str:
    """A config with one TCP check per cluster named in ``weights``, file actuator.

    ``weights`` values are written as given, so a test can put a bad one in; ``extra`` maps a
    cluster name to one more line for that cluster.
    """
    extra = extra or {}
    clusters = "".join(textwrap.dedent(f"""\
          - name: {name}
            weight: {weight}
            checks:
              - tcp: "127.0.0.1:{PORTS[name]}"
        """) + (f"  {extra[name]}\n" if name in extra else "")
        for name, weight in weights.items())
    return textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:0", admin: "127.0.0.1:0"}}
        probing: {{interval: {INTERVAL}, timeout: {TIMEOUT}, jitter: {JITTER}, rise: {RISE},
                  fall: {FALL}}}
        policy: {{tick: {TICK}, min_healthy_fraction: 0.3}}
        actuators:
          - {{type: file, path: state/weights.json}}
        clusters:
        """) + clusters


TINY = """\
clusters:
  - {name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}
actuators:
  - {type: file, path: ./weights.json}
"""
"""A config for tests that never run the daemon, so nothing is probed."""


def line_of(text: str, fragment: str) -> int:
    """1-based number of the only line of ``text`` containing ``fragment``."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(found) == 1, f"{fragment!r} is on lines {found}"
    return found[0]


# -- fixtures and helpers ----------------------------------------------------------------------

@pytest.fixture
def plans() -> PlanSpy:
    return PlanSpy(make_plan)


@pytest.fixture
def targets() -> FakeTargets:
    return FakeTargets()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "failover.yaml"
    path.write_text(config_text(WEIGHTS))
    return path


@pytest.fixture
def build(config_path: Path, plans: PlanSpy, targets: FakeTargets) -> Callable[..., Daemon]:
    def daemon(**kwargs: Any) -> Daemon:
        # The file watch is off unless a test asks for it: a watch that reads the file while
        # a test writes it sees half a file, reloads it, and counts an error of its own.
        kwargs.setdefault("watch_every", 3600.0)
        return Daemon(load(config_path), config_path, CollectorRegistry(), planner=plans,
                      probes={"tcp": targets.tcp}, **kwargs)
    return daemon


@pytest.fixture
def daemon(build: Callable[..., Daemon]) -> Daemon:
    return build()


@contextlib.asynccontextmanager
async def serving(daemon: Daemon) -> AsyncIterator[asyncio.Task[None]]:
    """Run the daemon until the block ends; yields its task once the status listener is bound."""
    task = asyncio.create_task(daemon.run(), name="daemon")
    bound = asyncio.create_task(daemon.status.ready.wait(), name="status bound")
    try:
        await asyncio.wait({task, bound}, timeout=WITHIN, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what run() raised
            pytest.fail("run() returned before the status listener was bound")
        assert bound.done(), f"status listener not bound within {WITHIN:g} fake seconds"
        yield task
    finally:
        bound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bound
        await stop(daemon, task)


async def stop(daemon: Daemon, task: asyncio.Task[None]) -> float:
    """``daemon.stop()``, then wait for ``run()`` to end; return the fake seconds that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    daemon.stop()
    # asyncio.wait, not a timeout around ``await task``: a cancel would go into the task.
    await asyncio.wait({task}, timeout=WITHIN)
    if not task.done():
        pytest.fail(f"run() did not end within {WITHIN:g} fake seconds of stop()")
    await task
    return loop.time() - started


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


def reloads(daemon: Daemon) -> tuple[float | None, float | None]:
    """``failover_config_reloads_total`` as (ok, error)."""
    return (sample(daemon, "failover_config_reloads_total", result="ok"),
            sample(daemon, "failover_config_reloads_total", result="error"))


async def get(daemon: Daemon, path: str) -> tuple[int, str]:
    url = f"http://{daemon.status.bound[0]}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def weights_file(daemon: Daemon) -> Path:
    actuator = daemon.config.actuators[0]
    assert isinstance(actuator, FileActuatorConfig)
    return actuator.path


def file_shares(daemon: Daemon) -> dict[str, float]:
    doc = json.loads(weights_file(daemon).read_text())
    return {name: c["share"] for name, c in doc["clusters"].items()}


async def all_serving(daemon: Daemon, plans: PlanSpy) -> Plan:
    """Wait until a plan with every cluster at its base-weight share is on disk; return it."""
    def done() -> bool:
        plan = daemon.plan
        return (plan is not None and plan.version >= 1 and not plan.frozen
                and all(s > 0 for s in plan.shares.values())
                and daemon.runners[0].applied_version == plan.version)

    await plans.until(done, "every cluster serving, written to weights.json")
    assert daemon.plan is not None
    return daemon.plan


async def advance_until(condition: Callable[[], bool], what: str, step: float = 0.1,
                        limit: float = 600.0) -> float:
    """Move the fake clock by ``step`` until ``condition`` holds; the fake seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(int(limit / step)):
        if condition():
            return loop.time() - start
        await asyncio.sleep(step)
    pytest.fail(f"{what}: not within {limit:g} fake seconds")


# -- reload ------------------------------------------------------------------------------------

async def test_good_reload_applies_new_weights_and_drops_removed_cluster(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets, config_path: Path) -> None:
    """A good reload returns True, counts ok; the next plan, gauges, file and probes follow it."""
    async with serving(daemon):
        first = await all_serving(daemon, plans)
        assert first.shares == pytest.approx({"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2})
        assert sample(daemon, "failover_cluster_share", cluster="lab-3") == pytest.approx(0.2)

        config_path.write_text(config_text({"lab-1": 50, "lab-2": 50}))
        made = len(plans.made)
        assert daemon.reload() is True

        assert reloads(daemon) == (1.0, 0.0)
        last = daemon.extra_status()["config"]["last_reload"]
        assert (last["result"], last["error"]) == ("ok", None)
        assert daemon.config.cluster("lab-3") is None
        await plans.until(lambda: len(plans.made) > made, "a plan after the reload")
        after = plans.made[made]
        assert {c.name: c.base_weight for c in after.clusters} == {"lab-1": 50, "lab-2": 50}
        # Moves may be phased over ticks (max_shift_per_tick); wait for the target.
        await plans.until(lambda: daemon.plan is not None and daemon.plan.shares
                          == pytest.approx({"lab-1": 0.5, "lab-2": 0.5}), "shares 0.5 / 0.5")
        plan = daemon.plan
        assert plan is not None
        assert plan.version > first.version
        assert sample(daemon, "failover_cluster_share", cluster="lab-2") == pytest.approx(0.5)
        for gauge in ("failover_cluster_share", "failover_cluster_target_share",
                      "failover_cluster_health_score", "failover_cluster_rank"):
            assert sample(daemon, gauge, cluster="lab-3") is None, gauge
        assert sample(daemon, "failover_cluster_state", cluster="lab-3", state="healthy") is None

        await plans.until(lambda: daemon.runners[0].applied_version == plan.version,
                          "the new plan in weights.json")
        assert file_shares(daemon) == pytest.approx({"lab-1": 0.5, "lab-2": 0.5})
        status, body = await get(daemon, "/v1/status")
        assert status == 200
        assert [c["name"] for c in json.loads(body)["clusters"]] == ["lab-1", "lab-2"]

        # lab-3 is no longer probed: ten more intervals of lab-1 probes, none of lab-3.
        seen = targets.probed["lab-3"]
        start = targets.probed["lab-1"]
        await plans.until(lambda: targets.probed["lab-1"] >= start + 10, "ten lab-1 probes")
        assert targets.probed["lab-3"] == seen


@pytest.mark.parametrize(("mistake", "expected"), [
    pytest.param({"weights": {"lab-1": 50, "lab-2": -5, "lab-3": 20}},
                 ("weight: -5", "clusters[1].weight: Input should be greater than or equal to 0"),
                 id="negative-weight"),
    pytest.param({"weights": WEIGHTS, "extra": {"lab-2": "colour: blue"}},
                 ("colour: blue", "clusters[1].colour: unknown key"),
                 id="unknown-key"),
])
async def test_bad_reload_keeps_running_config_and_reports_where(
        daemon: Daemon, plans: PlanSpy, config_path: Path,
        mistake: dict[str, Any], expected: tuple[str, str]) -> None:
    """A bad reload returns False, counts error, keeps config and plan, and says file:line: key."""
    async with serving(daemon):
        first = await all_serving(daemon, plans)
        running = daemon.config

        text = config_text(mistake["weights"], mistake.get("extra"))
        config_path.write_text(text)
        assert daemon.reload() is False

        assert reloads(daemon) == (0.0, 1.0)
        assert daemon.config is running
        last = daemon.extra_status()["config"]["last_reload"]
        assert last["result"] == "error"
        fragment, message = expected
        location = f"{config_path}:{line_of(text, fragment)}: {message}"
        assert last["error"].splitlines() == [location]
        status, body = await get(daemon, "/v1/status")
        assert status == 200
        assert json.loads(body)["config"]["last_reload"] == last

        ticks = plans.calls
        await plans.until(lambda: plans.calls >= ticks + 2, "two more planner ticks")
        plan = daemon.plan
        assert plan is not None
        assert plan.version == first.version
        assert {c.name: c.base_weight for c in plan.clusters} == WEIGHTS

        # Fixing the file and reloading again works and clears the error.
        config_path.write_text(config_text(WEIGHTS))
        assert daemon.reload() is True
        assert reloads(daemon) == (1.0, 1.0)
        assert daemon.extra_status()["config"]["last_reload"]["error"] is None
        assert daemon.config is not running
        made = len(plans.made)
        await plans.until(lambda: len(plans.made) > made, "a plan after the good reload")
        assert plans.made[made].version == first.version  # same weights: nothing moves


async def test_reload_requested_event_reloads_while_running(
        daemon: Daemon, plans: PlanSpy, config_path: Path) -> None:
    """Setting reload_requested (what SIGHUP does) reloads the file and the plan follows."""
    async with serving(daemon):
        first = await all_serving(daemon, plans)
        config_path.write_text(config_text({"lab-1": 40, "lab-2": 30, "lab-3": 30}))
        daemon.reload_requested.set()
        await plans.until(lambda: reloads(daemon) == (1.0, 0.0), "a counted reload")
        assert not daemon.reload_requested.is_set()
        assert [c.weight for c in daemon.config.clusters] == [40, 30, 30]
        target = {"lab-1": 0.4, "lab-2": 0.3, "lab-3": 0.3}
        await plans.until(lambda: daemon.plan is not None
                          and daemon.plan.shares == pytest.approx(target), "the new shares")
        assert daemon.plan is not None
        assert daemon.plan.version > first.version


async def test_sighup_reloads_while_running(
        daemon: Daemon, plans: PlanSpy, config_path: Path) -> None:
    """A real SIGHUP to the process reloads the config, and run() restores the handler after."""
    before = signal.getsignal(signal.SIGHUP)
    async with serving(daemon):
        await all_serving(daemon, plans)
        # Without the daemon's handler SIGHUP would end the test run itself.
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN)
        config_path.write_text(config_text({"lab-1": 50, "lab-2": 50, "lab-3": 0}))
        os.kill(os.getpid(), signal.SIGHUP)
        await plans.until(lambda: reloads(daemon) == (1.0, 0.0), "a reload after SIGHUP")
        await plans.until(lambda: daemon.plan is not None
                          and daemon.plan.shares.get("lab-3") == 0, "lab-3 at weight 0")
    assert signal.getsignal(signal.SIGHUP) == before


async def test_config_file_change_is_picked_up(
        build: Callable[..., Daemon], plans: PlanSpy, config_path: Path) -> None:
    """Writing a new config by rename (as editors do) reloads it without a signal, within
    one watch period."""
    daemon = build(watch_every=0.5)
    async with serving(daemon):
        await all_serving(daemon, plans)
        temp = config_path.with_suffix(".tmp")
        temp.write_text(config_text({"lab-1": 50, "lab-2": 50, "lab-3": 20}))
        temp.replace(config_path)
        took = await advance_until(lambda: reloads(daemon)[0] == 1, "reload after the change",
                                   step=0.05)
        assert took <= 0.5 + 0.05
        assert next(c.weight for c in daemon.config.clusters if c.name == "lab-2") == 50


def test_reload_without_a_config_path_does_nothing(tmp_path: Path) -> None:
    """A daemon built from a Config alone refuses to reload and counts nothing."""
    daemon = Daemon(parse(TINY, "<test>", tmp_path), None, registry=CollectorRegistry())
    assert daemon.reload() is False
    assert reloads(daemon) == (0.0, 0.0)
    assert daemon.extra_status()["config"] == {
        "path": None, "last_reload": {"result": None, "at": None, "error": None}}


# -- actuators ---------------------------------------------------------------------------------

HAPROXY = """\
  - type: haproxy
    socket: ./haproxy.sock
    backend: app
    servers: {a: a1}
"""
DNS = """\
  - type: dns
    server: 127.0.0.1:5353
    zone: gslb.example.
    name: app.gslb.example.
    tsig: {name: failover-key, secret_file: ./example-tsig.key}
    addresses: {a: [192.0.2.10]}
"""


UNUSABLE_DNS = """\
  - type: dns
    server: 127.0.0.1:5353
    zone: gslb.example.
    name: app.elsewhere.example.
    addresses: {a: [192.0.2.10]}
"""
"""A record name outside its zone: no update to that zone could ever change it."""


@pytest.mark.parametrize(("kind", "actuator"), [("haproxy", HAPROXY), ("dns", DNS)])
def test_build_actuators_builds_every_type(kind: str, actuator: str) -> None:
    """haproxy and dns actuators are built from their config, named after their target."""
    config = parse(TINY + actuator, "<test>", CONFIG_DIR)  # the TSIG key file is there
    names = [a.name for a in build_actuators(config)]
    assert len(names) == 2
    assert names[1].startswith(f"{kind}:")


def test_build_actuators_on_the_example_config() -> None:
    """The example config's three actuators (file, haproxy, dns) are all built."""
    actuators = build_actuators(load(CONFIG_DIR / "example.yaml"))
    assert [a.name.split(":")[0] for a in actuators] == ["file", "haproxy", "dns"]


def test_build_actuators_builds_the_file_actuator(tmp_path: Path) -> None:
    """A file actuator config becomes one actuator writing to the configured path."""
    [actuator] = build_actuators(parse(TINY, "<test>", tmp_path))
    assert actuator.name == f"file:{tmp_path / 'weights.json'}"


def test_reload_to_an_unusable_actuator_is_refused(tmp_path: Path) -> None:
    """A reload to a config whose actuator could never work fails, is counted, keeps the
    config, and says where."""
    path = tmp_path / "failover.yaml"
    path.write_text(TINY)
    daemon = Daemon(load(path), path, registry=CollectorRegistry())
    running = daemon.config
    path.write_text(TINY + UNUSABLE_DNS)
    assert daemon.reload() is False
    assert daemon.config is running
    assert reloads(daemon) == (0.0, 1.0)
    assert "actuators[1].name: app.elsewhere.example. is not in zone gslb.example." \
        in daemon.extra_status()["config"]["last_reload"]["error"]


# -- planner errors ----------------------------------------------------------------------------

async def test_planner_exception_is_counted_and_planning_goes_on(
        daemon: Daemon, plans: PlanSpy) -> None:
    """A planner that raises once is counted once; the daemon keeps planning and serving:
    the planner loop's own guard handles it."""
    plans.failures = 1
    async with serving(daemon) as task:
        await all_serving(daemon, plans)
        assert plans.calls == len(plans.made) + 1  # the first call raised, no other did
        assert sample(daemon, "failover_errors_total", where="planner") == 1.0
        assert not task.done()
        assert daemon.plan is not None
        assert daemon.plan.version >= 1
        assert await get(daemon, "/healthz") == (200, "ok\n")


# -- readiness and first actuation -------------------------------------------------------------

async def test_readyz_and_first_write_wait_for_every_verdict(
        daemon: Daemon, plans: PlanSpy) -> None:
    """Until every cluster has a verdict /readyz is 503 and nothing is written; then version 1.

    Rise is 2, so no cluster can have a verdict before its second result: at least one
    jittered interval (1.6 s) after its first."""
    loop = asyncio.get_running_loop()
    async with serving(daemon) as task:
        start = loop.time()
        await plans.until(lambda: plans.calls >= 2, "two planner ticks")
        assert loop.time() - start < INTERVAL * (1 - JITTER)

        assert await get(daemon, "/readyz") == (503, "waiting for a verdict on every cluster\n")
        assert await get(daemon, "/healthz") == (200, "ok\n")
        plan = daemon.plan
        assert plan is not None
        assert (plan.version, plan.frozen, plan.frozen_reason) == (0, True, "awaiting_verdicts")
        assert all(p.version == 0 for p in plans.made)
        assert sample(daemon, "failover_plan_version") == 0
        assert sample(daemon, "failover_frozen", reason="awaiting_verdicts") == 1
        assert not weights_file(daemon).exists()
        assert daemon.extra_status()["actuators"][0]["applied_version"] is None

        await advance_until(weights_file(daemon).exists, "a plan written to weights.json",
                            step=0.01)
        doc = json.loads(weights_file(daemon).read_text())
        assert (doc["version"], doc["frozen"]) == (1, False)  # version 0 is never written
        assert await get(daemon, "/readyz") == (200, "ready\n")
        assert await get(daemon, "/healthz") == (200, "ok\n")
        assert file_shares(daemon) == pytest.approx({"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2})
        assert sample(daemon, "failover_frozen", reason="awaiting_verdicts") == 0  # kept, at 0
        assert not task.done()


# -- stop --------------------------------------------------------------------------------------

async def test_stop_ends_run_at_once_and_leaves_weights_untouched(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    """stop() with a probe waiting on a silent target ends run() without waiting for any
    timer; weights.json stays byte for byte and the listener closes."""
    async with serving(daemon) as task:
        await all_serving(daemon, plans)
        before = weights_file(daemon).read_bytes()
        address = daemon.status.bound[0]
        targets.silent.add("lab-2")
        await advance_until(lambda: targets.in_flight["lab-2"] > 0, "a probe on lab-2 waiting",
                            step=0.01)
        took = await stop(daemon, task)
    assert took < 0.01, f"run() took {took:.2f} fake seconds to stop"
    assert task.exception() is None
    assert weights_file(daemon).read_bytes() == before
    assert sorted(p.name for p in weights_file(daemon).parent.iterdir()) == ["weights.json"]
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://{address}/healthz") as response:
            await response.read()


async def test_stop_right_after_a_reload_ends_run(daemon: Daemon, plans: PlanSpy) -> None:
    """stop() in the same tick as a reload still ends run() promptly."""
    # Regression: with asyncio.wait_for in wait_event (Python 3.11) the prober swallowed the
    # TaskGroup's cancel when the reload had just set its event, and run() never returned.
    task = asyncio.create_task(daemon.run(), name="daemon")
    try:
        await all_serving(daemon, plans)
        assert daemon.reload() is True
        daemon.stop()
        await asyncio.wait({task}, timeout=1.0)
        assert task.done(), "run() still running 1 fake second after stop()"
    finally:
        if not task.done():
            # A prober that swallowed the TaskGroup's one cancel ends on a second one.
            for stuck in asyncio.all_tasks():
                if stuck.get_name() == "prober":
                    stuck.cancel()
        daemon.stop()
        await asyncio.wait({task}, timeout=WITHIN)
        assert task.done()
        await task


# -- operator overrides --------------------------------------------------------------------------

TOKEN = "operator-token"  # noqa: S105 - a test token


@pytest.fixture
def operated(build: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch) -> Daemon:
    """A daemon with its admin API on (token from the environment)."""
    monkeypatch.setenv("FAILOVER_ADMIN_TOKEN", TOKEN)
    return build()


async def admin(daemon: Daemon, path: str, body: dict[str, Any] | None = None) -> int:
    assert daemon.admin is not None
    await daemon.admin.ready.wait()
    url = f"http://{daemon.admin.bound[0]}{path}"
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body or {}, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        return response.status


def test_no_token_means_no_admin_listener(daemon: Daemon) -> None:
    """Without a token the admin API is not served at all (never open without auth)."""
    assert daemon.admin is None


async def test_drain_and_freeze_through_the_admin_api(
        operated: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    """A drain takes a cluster's share to 0 at once; a freeze holds shares through a fault;
    undrain and unfreeze hand back to automation; every call is in the audit log."""
    async with serving(operated):
        await all_serving(operated, plans)
        assert await admin(operated, "/v1/clusters/lab-2/drain", {"reason": "bad deploy"}) == 200
        await plans.until(lambda: operated.plan is not None
                          and operated.plan.share("lab-2") == 0, "lab-2 drained")
        assert operated.plan is not None
        lab2 = next(c for c in operated.plan.clusters if c.name == "lab-2")
        assert (lab2.state, lab2.reason) == ("drained", "drained: bad deploy")
        assert any(d["action"] == "drain" and d["cause"] == "operator"
                   for d in operated.surface.decisions(10))

        assert await admin(operated, "/v1/freeze", {"reason": "incident 7"}) == 200
        await plans.until(lambda: operated.plan is not None and operated.plan.frozen,
                          "frozen by the operator")
        held = operated.plan.shares if operated.plan else {}
        targets.down.add("lab-3")
        await plans.until(lambda: operated.health.cluster("lab-3").state == "unhealthy",
                          "lab-3 failing")
        assert operated.plan is not None
        assert (operated.plan.frozen_reason, operated.plan.shares) == ("operator", held)

        assert await admin(operated, "/v1/unfreeze") == 200
        await plans.until(lambda: operated.plan is not None
                          and operated.plan.share("lab-3") == 0, "lab-3 evacuated")
        assert await admin(operated, "/v1/clusters/lab-2/undrain") == 200
        await plans.until(lambda: operated.plan is not None and any(
            c.name == "lab-2" and c.state in ("waiting", "recovering")
            for c in operated.plan.clusters), "lab-2 back through the recovery gate")
    lines = [json.loads(x) for x in (operated.config.state_dir / "audit.jsonl").read_text()
             .splitlines()]
    assert [x["action"] for x in lines] == ["drain", "freeze", "unfreeze", "undrain"]
    assert all(x["result"] == "ok" for x in lines)


# -- supervision ---------------------------------------------------------------------------------

async def test_a_task_that_dies_stops_the_daemon_and_leaves_the_data_plane(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    """A bug that kills the prober is not hidden by a restart: run() raises TaskDied naming
    it within one probe (the CLI exits 70 and the service manager restarts the process), and
    weights.json keeps the last plan."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(daemon.run(), name="daemon")
    await all_serving(daemon, plans)
    written = weights_file(daemon).read_bytes()

    targets.broken = True
    broke_at = loop.time()
    await asyncio.wait({task}, timeout=WITHIN)
    assert task.done(), "the daemon kept running with a dead prober"
    assert loop.time() - broke_at <= INTERVAL + 0.01  # the next probe of any cluster
    with pytest.raises(TaskDied, match="task prober died"):
        task.result()
    assert weights_file(daemon).read_bytes() == written


async def test_the_process_exits_70_when_a_task_dies_and_leaves_the_data_plane(
        config_path: Path, plans: PlanSpy, targets: FakeTargets,
        capsys: pytest.CaptureFixture[str]) -> None:
    """What `failover run` does with a task's death: exit code 70 (EX_SOFTWARE), one line
    saying which task and why it exits, weights.json as the last plan left it."""
    from failover.cli import TASK_DIED, serving  # noqa: PLC0415
    written: list[bytes] = []

    class BreaksOnceServing(FakeTargets):
        async def tcp(self, job: Job, ctx: ProbeContext) -> ProbeResult:
            path = config_path.parent / "state" / "weights.json"
            if path.exists() and json.loads(path.read_text())["version"] >= 1:
                written.append(path.read_bytes())
                self.broken = True
            return await super().tcp(job, ctx)

    breaking = BreaksOnceServing()
    code = await serving(lambda: Daemon(load(config_path), config_path, CollectorRegistry(),
                                planner=plans, probes={"tcp": breaking.tcp}), "c.yaml")
    assert code == TASK_DIED
    err = capsys.readouterr().err.splitlines()
    assert err == ["failover: task prober died; exiting so that the service manager "
                   "restarts it"]
    assert (config_path.parent / "state" / "weights.json").read_bytes() == written[0]


async def test_lost_state_numbers_on_from_what_the_data_plane_carries(
        daemon: Daemon, plans: PlanSpy) -> None:
    """state.json gone, weights.json at version 217: the next plan is 218, not 1, so that
    readers of weights.json never see the version go backwards."""
    path = weights_file(daemon)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 217, "clusters": {}}))
    async with serving(daemon):
        plan = await all_serving(daemon, plans)
        assert plan.version >= 218
        assert plans.made[0].version in (0, 218)
        assert json.loads(path.read_text())["version"] == plan.version


async def test_a_failing_cluster_is_evacuated_within_fall_intervals(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    async with serving(daemon):
        await all_serving(daemon, plans)
        targets.down.add("lab-1")
        took = await advance_until(lambda: daemon.plan is not None
                                   and daemon.plan.share("lab-1") == 0, "evacuated")
        # fall results, each up to a jittered interval apart, plus the tick that acts on them.
        assert took <= FALL * INTERVAL * (1 + JITTER) + TICK + 0.1
        await plans.until(lambda: daemon.runners[0].applied_version == daemon.plan.version
                          if daemon.plan else False, "written")
        assert file_shares(daemon) == pytest.approx({"lab-1": 0.0, "lab-2": 0.6, "lab-3": 0.4})


async def test_evacuations_go_on_while_every_default_worker_thread_is_held(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    """A disk that hangs holds the default executor's threads for good: each save gives up
    waiting after its bound while its write goes on. The planner has a thread of its own, so
    a failing cluster is still evacuated in time."""
    loop = asyncio.get_running_loop()
    held = threading.Event()
    async with serving(daemon):
        await all_serving(daemon, plans)
        workers = ThreadPoolExecutor(1)
        loop.set_default_executor(workers)
        stuck = loop.run_in_executor(None, held.wait)  # the one worker, held
        try:
            targets.down.add("lab-1")
            took = await advance_until(lambda: daemon.plan is not None
                                       and daemon.plan.share("lab-1") == 0, "evacuated")
            # As without the hang, plus the save's bound of waiting (1 s) on each tick.
            assert took <= FALL * INTERVAL * (1 + JITTER) + TICK + 1.1
        finally:
            held.set()
            await stuck
            # A fresh default for what comes next (the final save); the saves queued on the
            # held one still run.
            loop.set_default_executor(ThreadPoolExecutor())
            workers.shutdown(wait=False)


async def test_a_stalled_prober_is_seen_within_its_bounds(
        build: Callable[..., Daemon], plans: PlanSpy) -> None:
    """Every probe slot leaked (the dispatcher waits forever): verdicts lapse after 3
    jittered intervals and a timeout, the plan freezes as `stale` with its shares, and
    /healthz answers 503 once the prober has been silent past its bound (a jittered
    interval, a timeout and ``stall_after``)."""
    daemon = build(stall_after=10.0)
    loop = asyncio.get_running_loop()
    async with serving(daemon):
        serving_plan = await all_serving(daemon, plans)
        for _ in range(daemon.config.probing.budget.max_in_flight):
            await daemon.scheduler._in_flight.acquire()  # private: the failure injected is inside
        stalled_at = loop.time()
        frozen = await advance_until(lambda: daemon.plan is not None and daemon.plan.frozen,
                                     "frozen")
        assert daemon.plan is not None
        assert daemon.plan.frozen_reason == "stale"
        assert daemon.plan.shares == pytest.approx(serving_plan.shares)
        stale_after = 3 * INTERVAL * (1 + JITTER) + TIMEOUT
        # The last result before the stall is at most one jittered interval old.
        assert frozen <= stale_after + TICK + 0.1
        lapsed = await advance_until(lambda: daemon.plan is not None and all(
            c.state == "unknown" and c.reason.startswith("stale: ")
            for c in daemon.plan.clusters), "every verdict lapsed")
        assert frozen + lapsed <= stale_after + INTERVAL * (1 + JITTER) + TICK + 0.1
        assert daemon.plan.frozen_reason == "stale"
        assert await get(daemon, "/healthz") == (200, "ok\n")
        await advance_until(lambda: not daemon.surface.alive(), "a stall seen")
        assert loop.time() - stalled_at <= INTERVAL * (1 + JITTER) * 2 + TIMEOUT + 10.0 + 0.2
        status, _ = await get(daemon, "/healthz")
        assert status == 503
        assert any(s.startswith("prober silent for ")
                   for s in daemon.extra_status()["liveness"]["stalled"])


async def test_a_fixed_cluster_ramps_back_over_the_slow_start(
        daemon: Daemon, plans: PlanSpy, targets: FakeTargets) -> None:
    """Back after rise passes, then at least the timed slow start (60 s by default) to its
    full share: minutes of the daemon's life in a fraction of a second."""
    async with serving(daemon):
        await all_serving(daemon, plans)
        targets.down.add("lab-1")
        await asyncio.sleep(60)  # long enough to be cold and out of its cooldown
        assert daemon.plan is not None
        assert daemon.plan.share("lab-1") == 0
        targets.down.clear()
        back = await advance_until(lambda: daemon.plan is not None
                                   and daemon.plan.share("lab-1") > 0, "back")
        ramp = await advance_until(lambda: daemon.plan is not None
                                   and daemon.plan.share("lab-1") >= 0.5, "full share", step=0.5)
        assert back <= RISE * INTERVAL * (1 + JITTER) + TICK + 0.1
        assert ramp >= 20.0, f"snapped back in {ramp:.1f}s"


# -- large configs -------------------------------------------------------------------------------

def big_config(clusters: int) -> str:
    """A valid config of ``clusters`` clusters, each with a TCP check (about 100 bytes each)."""
    lines = [config_text({"lab-1": 50}).rstrip(), *(
        f"- {{name: c{n:05d}, weight: 1, checks: [{{tcp: \"127.0.1.{n % 250 + 1}:"
        f"{2000 + n // 250}\"}}]}}" for n in range(clusters))]
    budget = "probing: {budget: {total_per_second: 100000, max_in_flight: 1000}, "
    return "\n".join(lines).replace("probing: {", budget, 1) + "\n"


@pytest.mark.looptime(False)
async def test_a_large_config_is_parsed_off_the_event_loop(
        daemon: Daemon, config_path: Path) -> None:
    """A config of 1,000 clusters (70 kB) takes most of a second to parse and check: a
    reload does it on a thread, and the loop keeps turning meanwhile (probes and planning
    go on)."""
    config_path.write_text(big_config(1_000))
    turns = 0
    done = asyncio.Event()

    async def turn() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    spinner = asyncio.create_task(turn())
    try:
        assert await daemon.reloader.reload_off_loop() is True
    finally:
        done.set()
        await spinner
    assert len(daemon.config.clusters) == 1_001
    # On the loop, the spinner could only have turned at the reload's few awaits.
    assert turns > 100, f"the loop turned {turns} times while the config was parsed"


def test_a_config_file_over_its_size_cap_is_refused(tmp_path: Path) -> None:
    """A config file over 8 MiB is refused before it is parsed, saying so."""
    from failover.config import ConfigError  # noqa: PLC0415
    from failover.config.files import CONFIG_LIMIT  # noqa: PLC0415

    path = tmp_path / "huge.yaml"
    path.write_bytes(TINY.encode() + b"#" * CONFIG_LIMIT)
    with pytest.raises(ConfigError, match=r"too large \(\d+ bytes; at most 8,388,608\)"):
        load(path)
