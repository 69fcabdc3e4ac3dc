"""Load signals from the probes' own results: errors and latency inflation of the service
checks over their last few results, dated by the oldest of them."""

from __future__ import annotations

import textwrap

import pytest

from failover.config import all_jobs, parse
from failover.health import HealthTracker, ProbeResult

CONFIG = """\
probing: {interval: 2s, timeout: 800ms, rise: 2, fall: 3}
clusters:
  - name: a
    weight: 1
    dns: {server: 127.0.0.1:5301, names: [api.local]}
    checks: [{http: http://127.0.0.1:8101/healthz}]
  - name: b
    weight: 1
    checks: [{tcp: 127.0.0.1:8102}]
"""


def test_error_ratio_and_latency_inflation_from_the_service_checks() -> None:
    """Three results a check: one failure of three is an error ratio of a third; latency
    is measured against the window's lowest, taken as at least the quarter of the timeout
    health counts as free; DNS results never count; the sample is dated by the oldest."""
    config = parse(textwrap.dedent(CONFIG))
    tracker = HealthTracker(config)
    keys = {(job.cluster, job.kind): job.key for job in all_jobs(config.clusters)}
    assert tracker.probe_signals().clusters == {}  # nothing yet
    for at, result in ((1.0, ProbeResult.passed(0.2)), (3.0, ProbeResult.passed(0.4)),
                       (5.0, ProbeResult.failed(0.01, "bad_status", "503")),
                       (7.0, ProbeResult.passed(0.6))):
        tracker.record(keys[("a", "http")], result, at)
        tracker.record(keys[("a", "dns")], ProbeResult.failed(0.8, "timeout", "x"), at)
    sample = tracker.probe_signals().clusters["a"]
    assert sample.measured_at == 3.0
    assert sample.error_ratio == pytest.approx(1 / 3)
    assert sample.latency_ratio == pytest.approx(0.5 / 0.2)
    assert sample.utilization is None
    for at in (1.0, 2.0, 3.0):
        tracker.record(keys[("b", "tcp")], ProbeResult.passed(0.001 * at), at)
    fast = tracker.probe_signals().clusters["b"]
    assert (fast.error_ratio, fast.latency_ratio) == (0.0, 1.0)  # jitter of a fast answer
    assert tracker.probe_signals().source == "probes"
