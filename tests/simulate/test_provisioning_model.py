"""The simulator's model of the provisioning hook: the daemon's own shortfall and
after/cooldown rule decide the call, and the cluster it brings answers ``delay`` later, cold,
through the recovery gate."""

from __future__ import annotations

import pytest

from failover.config import Config, parse
from failover.config.loader import ConfigError
from failover.simulate import simulate
from tests.simulate.fixtures import CONFIG, scenario

HOOKED = CONFIG.replace("demand_rps: 1000\n", """\
demand_rps: 1000
provisioning: {webhook: {url: "http://provisioner.invalid/"}, after: 2m, cooldown: 30m}
""")

SHORT = """\
    name: short
    duration: 40m
    demand: [{at: 0s, rps: 1000}, {at: 5m, rps: 1000}, {at: 6m, rps: 2600}]
    events:
      - {at: 1m, cluster: a, http: down}
    provisioning:
      delay: %s
      clusters:
        - name: d
          weight: 30
          capacity_rps: 2000
          dns: {server: 10.4.0.53:53, names: [api.local]}
          checks: [{http: "http://10.4.0.10:8080/healthz"}]
    """


def hooked() -> Config:
    return parse(HOOKED, "hooked.yaml")


def calls_and_arrivals(delay: str) -> tuple[list[float], list[float], list[str | None]]:
    result = simulate(scenario(SHORT % delay, hooked()), hooked())
    calls = [m.at for m in result.events if m.what.startswith("webhook called")]
    added = [m.at for m in result.events if m.cluster == "d" and m.what.startswith("added")]
    states = result.clusters["d"].state
    return calls, added, [s for s in states if s is not None]


@pytest.mark.parametrize(("delay", "seconds"), [("5m", 300), ("15m", 900)])
def test_the_cluster_a_call_brings_arrives_after_the_delay(delay: str, seconds: float) -> None:
    calls, added, states = calls_and_arrivals(delay)
    # b and c hold 800 rps within headroom (0.8 x 1,000 each): short from when demand
    # passes 1,600 (5m22s on the way to 2,600 at 6m), called once it has lasted 2 minutes.
    assert len(calls) == 1  # the shortfall lasts until d is in, and the cooldown is 30m
    assert 5 * 60 + 22 + 120 <= calls[0] <= 5 * 60 + 22 + 120 + 2
    assert added == [calls[0] + seconds]
    # Cold and gated, as any new cluster: no verdict, then a ramp.
    assert states[0] in ("unknown", "waiting")
    assert "recovering" in states


def test_without_a_hook_in_the_config_a_provisioning_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="the config has no provisioning section"):
        scenario(SHORT % "5m")
