"""The simulation engine: reproducible runs, evacuation times, policies and additions."""

from __future__ import annotations

import json

import pytest

from failover.config import load
from failover.health import ProbeResult
from failover.simulate import load_scenario, simulate
from failover.simulate.faults import Faults, probe_result
from failover.simulate.scenario import FaultEvent
from tests.simulate.fixtures import FLEET, SCENARIOS, scenario, small_config

OUTAGE = """\
name: a loses DNS
duration: 5m
events:
  - {at: 1m, cluster: a, dns: timeout}
  - {at: 2m, cluster: a, dns: ok}
"""


def as_json(seed: int) -> str:
    return json.dumps(simulate(scenario(OUTAGE), small_config(), seed=seed).as_dict())


def test_same_seed_gives_identical_results() -> None:
    """Two runs with one seed produce byte-identical JSON; another seed moves the probes."""
    assert as_json(7) == as_json(7)
    assert as_json(7) != as_json(8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_dns_outage_is_evacuated_within_fall_intervals(seed: int) -> None:
    """us-east-1 reaches share 0 within fall x interval (+ jitter, the probe timeout and a
    tick) of its DNS fault, and not before fall - 1 intervals have passed."""
    config = load(FLEET)
    result = simulate(load_scenario(SCENARIOS / "single-dns-outage.yaml", config), config,
                      seed=seed)
    (evacuation,) = result.evacuations
    assert evacuation.cluster == "us-east-1"
    assert evacuation.at == 120
    probing, tick = config.probing, config.policy.tick
    slack = probing.fall * probing.interval * probing.jitter + probing.timeout
    assert evacuation.after is not None
    assert evacuation.after <= probing.fall * probing.interval + tick + slack
    assert evacuation.after >= (probing.fall - 1) * probing.interval * (1 - probing.jitter)


def test_fault_shorter_than_fall_is_never_evacuated() -> None:
    """A one-second DNS blip fails at most one probe: the cluster keeps its share."""
    result = simulate(scenario("""\
        name: blip
        duration: 2m
        events:
          - {at: 30s, cluster: a, dns: servfail}
          - {at: 31s, cluster: a, dns: ok}
        """), small_config())
    assert [e.after for e in result.evacuations] == [None]
    assert min(s for s in result.clusters["a"].share if s is not None) == pytest.approx(0.5)


def shares_after_fix(policy: str) -> list[float | None]:
    result = simulate(scenario(OUTAGE), small_config(), policy)
    fixed = result.times.index(120.0)
    return result.clusters["a"].share[fixed:fixed + 40]


def test_naive_snaps_back_while_the_planner_ramps() -> None:
    """After the fix the naive policy gives a its full base weight in one step; the planner
    admits it through slow start, so its share climbs over many ticks."""
    naive = shares_after_fix("naive")
    first = next(i for i, share in enumerate(naive) if share)
    assert naive[first] == pytest.approx(0.5)
    planned = shares_after_fix("planner")
    serving = [share for share in planned if share]
    assert serving
    assert serving[0] < 0.1
    assert serving == sorted(serving)  # ramping up, one tick at a time


def test_added_cluster_is_probed_and_given_traffic() -> None:
    """A cluster added mid-run has no samples before its time, then passes and gets traffic."""
    result = simulate(scenario("""\
        name: grow
        duration: 10m
        events:
          - at: 1m
            add:
              name: d
              weight: 50
              capacity_rps: 1000
              checks: [{tcp: "10.4.0.10:80"}]
        """), small_config())
    added = result.clusters["d"]
    index = result.times.index(60.0)
    assert added.share[:index] == [None] * index
    assert added.state[index] == "unknown"
    assert added.share[-1] == pytest.approx(50 / 150)
    assert result.capacity_rps["d"] == 1000
    assert [m.what for m in result.events] == ["added (weight 50, capacity 1000 rps)"]


def test_errors_are_counted_by_cause() -> None:
    """An outage sends some requests to a down cluster before evacuation; totals add up."""
    result = simulate(scenario(OUTAGE), small_config())
    requests = result.requests
    assert requests.total == pytest.approx(1000 * 300)
    assert requests.down > 0
    assert requests.errored == pytest.approx(requests.down + requests.overload
                                             + requests.unplaced)


def test_probe_results_follow_the_faults() -> None:
    """DNS faults fail dns probes; service faults fail http and tcp, bad_status only http;
    down fails everything; timeouts last the probe timeout."""
    dns = FaultEvent(at=0, cluster="a", dns="nxdomain")
    assert probe_result("dns", Faults().apply(dns), 0.8) == ProbeResult.failed(
        0.005, "nxdomain", "simulated nxdomain")
    assert probe_result("http", Faults().apply(dns), 0.8).ok
    status = Faults(http="bad_status")
    assert not probe_result("http", status, 0.8).ok
    assert probe_result("tcp", status, 0.8).ok
    down = Faults(http="down")
    assert [probe_result(kind, down, 0.8).latency for kind in ("dns", "http", "tcp")] == \
        [0.8, 0.8, 0.8]
    assert Faults(dns="servfail").down
    assert not Faults().down


def test_december_11_recovers_within_capacity_where_naive_overloads() -> None:
    """The 1-hour December 11 shape: when six clusters come back cold at once, the planner
    keeps every one of them within its (warming) capacity; the naive policy overloads them."""
    config = load(FLEET)
    scenario = load_scenario(SCENARIOS / "december-11.yaml", config)
    planned = simulate(scenario, config)
    naive = simulate(scenario, config, "naive")
    assert len(planned.times) == 3600
    recovering = {n: p.recovery for n, p in planned.peaks.items() if p.recovery is not None}
    assert len(recovering) == 6
    assert max(recovering.values()) <= 1.0, recovering
    assert max(p.recovery for p in naive.peaks.values() if p.recovery is not None) > 2.0
