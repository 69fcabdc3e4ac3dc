"""A real Prometheus scrapes a running daemon: the values, the rules and the exposition hold."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.live import Stack
from tests.deploy.tools import RULES, poll, run

WITHIN = 20.0
"""Seconds for a value to reach Prometheus: first plan, a scrape, a rule evaluation."""


def _single_value(stack: Stack, expr: str) -> tuple[dict[str, str], float] | None:
    stack.check_running()
    doc = stack.query(expr)
    assert doc["status"] == "success", doc
    result = doc["data"]["result"]
    if len(result) != 1:
        return None
    return result[0]["metric"], float(result[0]["value"][1])


def test_target_is_up_under_the_deploy_job_name(stack: Stack) -> None:
    """Prometheus scrapes the daemon as job "failover", the name FailoverDown keys on."""

    def up() -> dict[str, Any] | None:
        stack.check_running()
        targets = stack.api("/api/v1/targets")["data"]["activeTargets"]
        return targets[0] if targets and targets[0]["health"] == "up" else None

    target = poll(up, WITHIN, "target up", detail=stack.logs)
    assert target["labels"]["job"] == "failover"
    assert target["scrapeUrl"] == stack.daemon_url + "/metrics"


def test_share_reaches_prometheus(stack: Stack) -> None:
    """lab-1's planned share (weight 50 of 100) reads back as 0.5 through /api/v1/query."""

    def half() -> tuple[dict[str, str], float] | None:
        found = _single_value(stack, 'failover_cluster_share{cluster="lab-1"}')
        return found if found is not None and found[1] == 0.5 else None

    labels, value = poll(half, WITHIN, "lab-1 share 0.5 in Prometheus", detail=stack.logs)
    assert value == 0.5
    assert labels["job"] == "failover"
    # Every cluster passes: healthy, or degraded if its latency ranks it down.
    doc = stack.query('sum(failover_cluster_state{state=~"healthy|degraded"})')
    assert float(doc["data"]["result"][0]["value"][1]) == 3


def test_recording_rules_produce_values(stack: Stack) -> None:
    """The recorded share sum is 1 and each actuator is 0 versions behind, from real scrapes."""

    def total() -> float | None:
        found = _single_value(stack, "instance:failover_cluster_share:sum")
        return found[1] if found is not None and found[1] == 1 else None

    assert poll(total, WITHIN, "recorded share sum 1", detail=stack.logs) == 1

    def caught_up() -> float | None:
        found = _single_value(stack, "instance_actuator:failover_actuator_versions_behind:diff")
        return found[1] if found is not None and found[1] == 0 else None

    assert poll(caught_up, WITHIN, "file actuator caught up", detail=stack.logs) == 0


def test_every_rule_evaluates_without_error_and_none_fires(stack: Stack) -> None:
    """Each recording and alerting rule evaluates cleanly on live data; a healthy lab fires
    no alert."""

    def evaluated() -> list[dict[str, Any]] | None:
        stack.check_running()
        groups = stack.api("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = poll(evaluated, WITHIN, "every rule evaluated once", detail=stack.logs)
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in shipped)
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken
    firing = [r["name"] for r in rules if r.get("state") == "firing"]
    assert not firing


def test_promtool_accepts_the_daemons_metrics(stack: Stack) -> None:
    """`promtool check metrics` finds no problem in the daemon's /metrics."""
    text = stack.daemon_metrics()
    assert "failover_cluster_share" in text
    result = run(["promtool", "check", "metrics"], stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""
