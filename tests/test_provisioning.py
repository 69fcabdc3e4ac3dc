"""The provisioning hook: the shortfall read from a plan, when a call is due, and the call
itself against a real HTTP receiver (retries, refusals, the token)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from failover.config import Config, parse
from failover.metrics import Metrics
from failover.model import ClusterPlan, ClusterState, Plan
from failover.planner.shortfall import shortfall
from failover.registry import provisioning
from failover.registry.provisioning import ProvisioningHook
from tests.servers import serving


def config(url: str = "http://127.0.0.1:9/hook", extra: str = "") -> Config:
    return parse(textwrap.dedent(f"""\
        demand_rps: 300
        policy: {{headroom: 0.8}}
        provisioning:
          webhook: {{url: "{url}"{extra}}}
          after: 10s
          cooldown: 60s
          attempts: 3
        clusters:
          - {{name: a, weight: 1, capacity_rps: 100, checks: [{{tcp: "127.0.0.1:8101"}}]}}
          - {{name: b, weight: 1, capacity_rps: 100, checks: [{{tcp: "127.0.0.1:8102"}}]}}
          - {{name: c, weight: 1, checks: [{{tcp: "127.0.0.1:8103"}}]}}
        """), "c.yaml")


def plan(shares: dict[str, float], *, shed: float = 0.0, capped: set[str] = frozenset(),
         spilled: set[str] = frozenset(), frozen: bool = False) -> Plan:
    return Plan(7, 0.0, tuple(
        ClusterPlan(name, share, share, ClusterState.HEALTHY, 1, 1.0, 1.0, "",
                    capped=name in capped, spilled=name in spilled)
        for name, share in shares.items()), frozen=frozen, shed=shed)


def test_the_shortfall_is_what_is_shed_and_spilled_beyond_headroom() -> None:
    c = config()
    # 300 rps: a and b hold 80 each (0.8 x 100), the rest shed.
    shed = shortfall(plan({"a": 0.8 / 3, "b": 0.8 / 3, "c": 0.0}, shed=1 - 1.6 / 3,
                          capped={"a", "b"}), c.clusters, c.policy, c.demand_rps)
    assert shed is not None
    assert shed.rps == pytest.approx(140)
    assert (shed.at_capacity, shed.plan_version) == (("a", "b"), 7)
    # Spilled: b carries 150 rps, 70 beyond its 80; c has no capacity to be over.
    spill = shortfall(plan({"a": 0.8 / 3, "b": 0.5, "c": 1 - 0.5 - 0.8 / 3}, capped={"a"},
                           spilled={"b"}), c.clusters, c.policy, c.demand_rps)
    assert spill is not None
    assert spill.rps == pytest.approx(70)
    assert spill.at_capacity == ("a", "b")


def test_nothing_is_short_within_headroom_when_frozen_or_without_demand() -> None:
    c = config()
    fits = plan({"a": 0.2, "b": 0.2, "c": 0.6})
    assert shortfall(fits, c.clusters, c.policy, c.demand_rps) is None
    # At capacity but not beyond it: nothing to ask for.
    full = plan({"a": 0.8 / 3, "b": 0.8 / 3, "c": 1 - 1.6 / 3}, capped={"a", "b"})
    assert shortfall(full, c.clusters, c.policy, c.demand_rps) is None
    frozen = plan({"a": 0.0, "b": 0.0, "c": 0.0}, shed=1.0, frozen=True)
    assert shortfall(frozen, c.clusters, c.policy, c.demand_rps) is None
    assert shortfall(plan({"a": 1.0}, shed=0.5), c.clusters, c.policy, None) is None


def test_provisioning_without_demand_or_capacity_is_refused() -> None:
    text = textwrap.dedent("""\
        provisioning: {webhook: {url: "http://127.0.0.1:9/hook"}}
        clusters:
          - {name: a, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
        """)
    with pytest.raises(Exception, match="provisioning: needs demand_rps"):
        parse(text, "c.yaml")


SHORT = plan({"a": 0.8 / 3, "b": 0.8 / 3, "c": 0.0}, shed=1 - 1.6 / 3, capped={"a", "b"})


def test_a_call_is_due_once_the_shortfall_lasts_and_once_per_cooldown() -> None:
    now: dict[str, Plan | None] = {"plan": SHORT}
    c = config()
    hook = ProvisioningHook(lambda: c, lambda: now["plan"], Metrics(CollectorRegistry()))
    assert hook.due(c, 100.0) is None  # short since 100
    assert hook.due(c, 109.0) is None  # 9 s: not yet
    due = hook.due(c, 110.0)
    assert due is not None
    assert due[2] == pytest.approx(10)
    hook._watch.called(110.0)  # what run() records as it starts the call
    assert hook.due(c, 169.0) is None  # within the cooldown
    assert hook.due(c, 170.0) is not None
    # The shortfall ends: it must last ``after`` again before a call.
    now["plan"] = plan({"a": 0.2, "b": 0.2, "c": 0.6})
    assert hook.due(c, 300.0) is None
    now["plan"] = SHORT
    assert hook.due(c, 301.0) is None
    assert hook.due(c, 311.0) is not None


def test_only_the_leader_calls() -> None:
    c = config()
    leading = {"now": False}
    hook = ProvisioningHook(lambda: c, lambda: SHORT, Metrics(CollectorRegistry()),
                            leading=lambda: leading["now"])
    assert hook.due(c, 0.0) is None
    assert hook.due(c, 20.0) is None  # a follower: never, however long it lasts
    leading["now"] = True
    assert hook.due(c, 21.0) is None  # led from now: the shortfall must last again
    assert hook.due(c, 31.0) is not None


class Receiver:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.calls: list[tuple[dict[str, Any], str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.json(), request.headers.get("Authorization")))
        return web.Response(status=self.answers.pop(0) if self.answers else 200, text="x")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver([])
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    async with serving(app) as url:
        yield got, f"{url}/hook"


def count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def call(url: str, extra: str = "") -> tuple[CollectorRegistry, ProvisioningHook, Config]:
    registry = CollectorRegistry()
    c = config(url, extra)
    hook = ProvisioningHook(lambda: c, lambda: SHORT, Metrics(registry))
    hook.due(c, 0.0)
    due = hook.due(c, 10.0)
    assert due is not None
    await hook._call(*due)
    return registry, hook, c


async def test_the_call_carries_the_shortfall_and_the_token_and_retries_what_may_pass(
        receiver: tuple[Receiver, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provisioning, "BACKOFF", 0.01)
    got, url = receiver
    got.answers = [503, 429]
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    registry, _, _ = await call(url, f', token_file: "{token}"')
    assert len(got.calls) == 3
    body, authorization = got.calls[-1]
    assert authorization == "Bearer s3cret"
    assert body == {"shortfall_rps": pytest.approx(140), "at_capacity": ["a", "b"],
                    "plan_version": 7, "short_for_s": 10.0, "demand_rps": 300.0}
    assert count(registry, "failover_provisioning_calls_total", result="ok") == 1
    assert count(registry, "failover_provisioning_attempts_total") == 3
    assert json.dumps(body)  # plain JSON, nothing else


async def test_a_refusal_is_not_retried_and_a_dead_hook_fails_after_its_attempts(
        receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provisioning, "BACKOFF", 0.01)
    got, url = receiver
    got.answers = [403]
    registry, _, _ = await call(url)
    assert len(got.calls) == 1
    assert count(registry, "failover_provisioning_calls_total", result="refused") == 1
    # Nothing listening: three attempts, counted as failed, and no exception escapes.
    dead, _, _ = await call("http://127.0.0.1:9/hook")
    assert count(dead, "failover_provisioning_calls_total", result="failed") == 1
    assert count(dead, "failover_provisioning_attempts_total") == 3


async def test_a_missing_token_file_is_a_failed_call(tmp_path: Path) -> None:
    registry, _, _ = await call("http://127.0.0.1:9/hook",
                                f', token_file: "{tmp_path / "nope"}"')
    assert count(registry, "failover_provisioning_calls_total", result="failed") == 1
