"""Load model v2, one mechanism a test, each on a tiny scenario: congestion collapse,
metastable hysteresis from retries, retry amplification within a budget, warm-up by requests
served, a shared dependency, health checks that see overload, and late noisy signals."""

from __future__ import annotations

import random

import pytest

from failover.config import load
from failover.simulate import load_scenario, simulate
from failover.simulate.fluid import FluidModel, goodput, queueing_inflation
from failover.simulate.load import DemandCurve
from failover.simulate.scenario import (
    DemandPoint,
    LoadParams,
    Retries,
    SharedDependency,
    SignalParams,
)
from failover.simulate.signals import SignalFeed
from tests.simulate.fixtures import FLEET, SCENARIOS, scenario, small_config


def model(**params: object) -> FluidModel:
    return FluidModel(LoadParams(**params))  # type: ignore[arg-type]


def run(m: FluidModel, seconds: float, demand: DemandCurve, start: float = 0.0) -> None:
    m.advance(start, start + seconds, demand)


def test_goodput_collapses_past_capacity() -> None:
    """A server that pays a fifth of a request to refuse one serves its capacity at exactly
    its capacity, three quarters of it offered twice that, half at three times, nothing at
    five times (the SRE book: rejecting is not free)."""
    assert [goodput(x, 1000, 0.2) for x in (500, 1000, 2000, 3000, 5000, 8000)] == \
        pytest.approx([500, 1000, 750, 500, 0, 0])
    assert goodput(2000, 1000, 0.0) == 1000  # free refusals: v1's "serve exactly capacity"


@pytest.mark.parametrize(("attempts", "budget", "recovers_below"), [
    (4, None, 0.874), (3, 0.1, 0.978)])
def test_retries_make_overload_metastable(attempts: int, budget: float | None,
                                          recovers_below: float) -> None:
    """Demand creeps from 0.8 to 1.1 of capacity and back down: the cluster tips over just
    past its capacity, and its clients' retries keep it overloaded until demand falls well
    below it: 0.87 of capacity with 4 attempts and no retry budget, 0.98 with 3 attempts and
    the SRE book's 10 % budget (the fluid model in the notes: 0.88 and 0.95-0.98)."""
    m = model(retries=Retries(max_attempts=attempts, budget=budget), reject_cost=0.2)
    m.add("a", 1000.0, 0.0, warm=True)
    m.set_shares({"a": 1.0}, 0.0)
    demand = DemandCurve([DemandPoint(at=0, rps=800), DemandPoint(at=600, rps=1100),
                          DemandPoint(at=1800, rps=500)])
    tripped = recovered = None
    for t in range(1800):
        run(m, 1, demand, t)
        failing = m.failure_ratio("a") > 0.01
        if tripped is None and failing:
            tripped = demand(t + 1)
        if tripped is not None and t > 600 and recovered is None and not failing:
            recovered = demand(t + 1)
    assert tripped == pytest.approx(1000, abs=5)
    assert recovered == pytest.approx(1000 * recovers_below, abs=5)


def test_retries_amplify_load_within_their_budget() -> None:
    """Half the traffic goes to a down cluster: with 3 attempts and no budget the live one
    is offered 1 + 1/2 + 1/4 of its share of fresh demand; a 10 % budget caps the retries at
    a tenth of it. A request errs only when its last attempt fails."""
    for budget, attempts, errored in ((None, 1.75, 0.125), (0.1, 1.1, 0.45)):
        m = model(retries=Retries(max_attempts=3, budget=budget))
        m.add("up", None, 0.0, warm=True)
        m.add("down", None, 0.0, warm=True)
        m.set_down("down", True, 0.0)
        m.set_shares({"up": 0.5, "down": 0.5}, 0.0)
        run(m, 60, DemandCurve.constant(1000))
        assert m.clusters["up"].offered == pytest.approx(500 * attempts, rel=1e-6)
        assert m.requests.errored / m.requests.total == pytest.approx(errored, rel=0.02)


def test_a_cold_cluster_warms_with_what_it_serves_not_with_time() -> None:
    """Two clusters cold at 0.3 of their capacity: over the same minutes, the one given all
    it can serve warms much more than the one given a tenth of that."""
    m = model(cold_factor=0.3, warmup=300, cold_after=30)
    m.add("busy", 1000.0, 0.0, warm=False)
    m.add("idle", 1000.0, 0.0, warm=False)
    assert m.clusters["busy"].effective_capacity() == pytest.approx(300)
    m.set_shares({"busy": 300 / 330, "idle": 30 / 330}, 0.0)
    run(m, 300, DemandCurve.constant(330))
    busy, idle = (m.clusters[n].effective_capacity() or 0 for n in ("busy", "idle"))
    assert busy > 500
    assert idle < 320
    m.set_shares({"busy": 1.0}, 300)
    run(m, 31, DemandCurve.constant(330), 300)  # idle past cold_after: cold again
    assert m.clusters["idle"].effective_capacity() == pytest.approx(300)


def test_cold_misses_overload_a_shared_dependency_and_every_cluster_pays() -> None:
    """A warm cluster alone keeps a dependency sized for its misses busy; a cold one added
    beside it sends all its requests there as misses, the dependency collapses, and the warm
    one fails its own misses too."""
    shared = SharedDependency(capacity_rps=100)
    m = model(shared=shared, cold_factor=0.3)
    m.add("warm", 2000.0, 0.0, warm=True)
    m.set_shares({"warm": 1.0}, 0.0)
    run(m, 10, DemandCurve.constant(1000))
    assert m.failure_ratio("warm") == 0
    assert m.shared is not None
    assert m.shared.load == pytest.approx(50)  # 5 % misses of 1000 rps
    m.add("cold", 2000.0, 10, warm=False)
    m.set_shares({"warm": 0.5, "cold": 0.5}, 10)
    run(m, 1, DemandCurve.constant(1000), 10)
    assert m.shared.load > 3 * shared.capacity_rps
    assert m.failure_ratio("warm") > 0.01
    assert m.requests.dependency > 0


def test_health_checks_fail_as_often_as_an_overloaded_cluster_fails_requests() -> None:
    """With the naive policy pushing a cold cluster to three times its capacity, its HTTP
    checks fail and it is evacuated; with probes_see_load off, nothing fails them."""
    text = """\
        name: cold return
        duration: 4m
        load: {cold_factor: 0.3, probes_see_load: %s}
        events:
          - {at: 30s, cluster: a, dns: timeout}
          - {at: 90s, cluster: a, dns: ok}
        """
    seen = simulate(scenario(text % "true"), small_config(), "naive")
    blind = simulate(scenario(text % "false"), small_config(), "naive")
    evacuated = [s == "unhealthy" for s in seen.clusters["a"].state[100:]]
    assert any(evacuated)
    assert not any(s == "unhealthy" for s in blind.clusters["a"].state[100:])


def test_signals_arrive_late_noisy_and_sometimes_not_at_all() -> None:
    """A sample describes its instant (measured_at) and can be read ``delay`` later; values
    are off by about ``noise``; about ``dropout`` of them never arrive."""
    m = model()
    m.add("a", 1000.0, 0.0, warm=True)
    m.set_shares({"a": 1.0}, 0.0)
    run(m, 1, DemandCurve.constant(500))
    feed = SignalFeed(SignalParams(period=1, delay=5, noise=0.05, dropout=0.2),
                      random.Random(1), shared_expected=False)
    readings = []
    for t in range(2000):
        feed.take(m, float(t))
        sample = feed.signals(t + 5.0).clusters.get("a")
        if sample is not None and sample.measured_at == t:
            readings.append(sample.utilization)
    assert feed.signals(1.0).clusters.get("a") is not None  # the last one stays
    assert len(readings) == pytest.approx(0.8 * 2000, rel=0.05)
    mean = sum(readings) / len(readings)
    spread = (sum((r - mean) ** 2 for r in readings) / len(readings)) ** 0.5
    assert mean == pytest.approx(0.5, abs=0.01)
    assert spread == pytest.approx(0.5 * 0.05, rel=0.15)
    late = SignalFeed(SignalParams(delay=5, dropout=0), random.Random(1),
                      shared_expected=False)
    late.take(m, 10.0)
    assert late.signals(14.9).clusters == {}
    assert late.signals(15.0).clusters["a"].measured_at == 10.0


def test_queueing_inflates_latency_near_saturation_only() -> None:
    """Latency over unloaded latency (M/M/16, Sakasegawa): flat at half load, doubled near
    0.95, at its cap once saturated."""
    assert queueing_inflation(0.5) < 1.01
    assert 1.8 < queueing_inflation(0.95) < 2.2
    assert queueing_inflation(1.0) == 50


def test_v1_scenarios_still_run_on_model_v1() -> None:
    """``load.model: v1`` keeps the v1 model: overload errors only what exceeds capacity."""
    text = """\
        name: v1
        duration: 3m
        load: {model: v1}
        events:
          - {at: 30s, cluster: a, dns: timeout}
          - {at: 60s, cluster: a, dns: ok}
        """
    result = simulate(scenario(text), small_config(), "naive")
    assert result.requests.dependency == 0
    assert result.requests.floor <= result.requests.errored


def test_shipped_v1_scenario_files_load_unchanged() -> None:
    """The v1 scenario files load as they are, with the v2 model's defaults."""
    config = load(FLEET)
    for name in ("december-11.yaml", "single-dns-outage.yaml", "flapping.yaml",
                 "new-cluster.yaml"):
        loaded = load_scenario(SCENARIOS / name, config)
        assert loaded.load.model == "v2"
        assert loaded.load.retries.max_attempts == 3
