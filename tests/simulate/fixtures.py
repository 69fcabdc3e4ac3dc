"""A small config and scenario builder shared by the simulation tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from failover.config import Config, parse
from failover.simulate import Scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
FLEET = SCENARIOS / "fleet.yaml"

CONFIG = """\
probing: {interval: 2s, timeout: 800ms, jitter: 0.2, rise: 2, fall: 3}
policy:
  tick: 1s
  recovery: {max_concurrent: 1, slow_start: 60s, cooldown: 30s}
demand_rps: 1000
clusters:
  - name: a
    weight: 50
    capacity_rps: 1000
    dns: {server: 10.1.0.53:53, names: [api.local]}
    checks: [{http: "http://10.1.0.10:8080/healthz"}, {tcp: "10.1.0.10:8080"}]
  - name: b
    weight: 30
    capacity_rps: 1000
    dns: {server: 10.2.0.53:53, names: [api.local]}
    checks: [{http: "http://10.2.0.10:8080/healthz"}, {tcp: "10.2.0.10:8080"}]
  - name: c
    weight: 20
    capacity_rps: 1000
    dns: {server: 10.3.0.53:53, names: [api.local]}
    checks: [{http: "http://10.3.0.10:8080/healthz"}, {tcp: "10.3.0.10:8080"}]
"""


def small_config() -> Config:
    return parse(CONFIG, "small.yaml")


def scenario(text: str, config: Config | None = None) -> Scenario:
    return parse_scenario(textwrap.dedent(text), config or small_config(), "s.yaml")
