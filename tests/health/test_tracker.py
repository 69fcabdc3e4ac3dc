"""HealthTracker: per-cluster states, reasons, check status and reloads."""

from __future__ import annotations

import dataclasses
import math
import textwrap

import pytest

from failover.config import Config, all_jobs, parse
from failover.health import ALL_PASSING, HealthTracker, ProbeResult
from failover.health.check import CheckStatus
from failover.model import ClusterState

DNS = "dns 127.0.0.1:5301 api.default.svc.cluster.local"
TCP = "tcp 127.0.0.1:8101"
HTTP = "http http://127.0.0.1:8201/healthz"

BASE = """\
probing: {interval: 2s, timeout: 800ms, rise: 2, fall: 3}
clusters:
  - name: a
    weight: 60
    capacity_rps: 1000
    dns: {server: 127.0.0.1:5301, names: [api.default.svc.cluster.local]}
    checks:
      - tcp: 127.0.0.1:8101
  - name: b
    weight: 40
    checks:
      - http: http://127.0.0.1:8201/healthz
"""

PASS = ProbeResult.passed(0.01)
TIMEOUT = ProbeResult.failed(0.8, "timeout", "no answer in 800ms")


def config(text: str = BASE) -> Config:
    return parse(textwrap.dedent(text))


class Feed:
    """Sends results to a tracker by check label, with a ticking fake clock."""

    def __init__(self, tracker: HealthTracker, cfg: Config) -> None:
        self.tracker = tracker
        self.keys = {job.label: job.key for job in all_jobs(cfg.clusters)}
        self.now = 0.0

    def __call__(self, label: str, *results: ProbeResult) -> None:
        for result in results:
            self.now += 2.0
            assert self.tracker.record(self.keys[label], result, self.now)


@pytest.fixture
def tracker() -> HealthTracker:
    return HealthTracker(config())


@pytest.fixture
def feed(tracker: HealthTracker) -> Feed:
    return Feed(tracker, config())


def state(tracker: HealthTracker, name: str) -> ClusterState:
    return tracker.cluster(name).state


def test_everything_starts_unknown(tracker: HealthTracker) -> None:
    """Before any result every cluster is unknown and not ready."""
    assert [v.state for v in tracker.views()] == [ClusterState.UNKNOWN] * 2
    assert not tracker.all_have_verdicts()
    assert tracker.cluster("a").reason == "no verdict yet from 2 of 2 checks"


def test_unknown_until_every_check_has_a_verdict(tracker: HealthTracker, feed: Feed) -> None:
    """One passing check is not enough: the cluster waits for the other."""
    feed(DNS, PASS, PASS)
    assert state(tracker, "a") == ClusterState.UNKNOWN
    feed(TCP, PASS, PASS)
    assert state(tracker, "a") == ClusterState.HEALTHY
    assert tracker.cluster("a").reason == ALL_PASSING


def test_one_failing_check_is_unhealthy_even_without_other_verdicts(
        tracker: HealthTracker, feed: Feed) -> None:
    """A failing verdict makes the cluster unhealthy while its other check has none yet."""
    feed(DNS, TIMEOUT, TIMEOUT, TIMEOUT)
    health = tracker.cluster("a")
    assert health.state == ClusterState.UNHEALTHY
    assert health.reason == f"{DNS} timeout x3"


def test_reason_counts_consecutive_failures(tracker: HealthTracker, feed: Feed) -> None:
    """The reason names the check, the failure class and the current run length."""
    feed(TCP, PASS, PASS)
    feed(DNS, PASS, PASS, TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT)
    assert tracker.cluster("a").reason == f"{DNS} timeout x4"


def test_reason_counts_only_the_run_of_the_latest_failure_class(
        tracker: HealthTracker, feed: Feed) -> None:
    """15 timeouts then 1 refused is not ``refused x16``: the class's own run is counted and
    the whole run of failures beside it; a run of one class alone reads as before."""
    refused = ProbeResult.failed(0.001, "refused", "connection refused")
    feed(TCP, PASS, PASS)
    feed(DNS, *[TIMEOUT] * 15, refused)
    assert tracker.cluster("a").reason == f"{DNS} refused x1 (16 failures in a row)"
    feed(DNS, refused, refused)
    assert tracker.cluster("a").reason == f"{DNS} refused x3 (18 failures in a row)"
    feed(DNS, PASS, refused, refused, refused)
    assert tracker.cluster("a").reason == f"{DNS} refused x3"
    dns = next(c for c in tracker.check_statuses("a") if c.label == DNS)
    assert dns.consecutive_failures == 3


def test_reason_while_rising_names_last_failure(tracker: HealthTracker, feed: Feed) -> None:
    """A failing check that has started passing again says so, still unhealthy."""
    feed(DNS, TIMEOUT, TIMEOUT, TIMEOUT, PASS)
    health = tracker.cluster("a")
    assert health.state == ClusterState.UNHEALTHY
    assert health.reason == f"{DNS} timeout, then 1/2 passes"


def test_several_failing_checks_are_all_counted() -> None:
    """Two failing checks are named; a third is counted."""
    cfg = config("""\
        clusters:
          - name: a
            weight: 1
            checks: [{tcp: "127.0.0.1:1"}, {tcp: "127.0.0.1:2"}, {tcp: "127.0.0.1:3"}]
        """)
    tracker = HealthTracker(cfg)
    feed = Feed(tracker, cfg)
    refused = ProbeResult.failed(0.001, "refused", "connection refused")
    for port in (1, 2, 3):
        feed(f"tcp 127.0.0.1:{port}", refused, refused, refused)
    assert tracker.cluster("a").reason == (
        "tcp 127.0.0.1:1 refused x3; tcp 127.0.0.1:2 refused x3 (+1 more failing)")


def test_recent_failures_degrade_a_passing_cluster(tracker: HealthTracker, feed: Feed) -> None:
    """Passing checks with three recent failures in ten make the cluster degraded."""
    feed(TCP, PASS, PASS)
    feed(DNS, PASS, PASS, TIMEOUT, TIMEOUT, PASS, TIMEOUT, PASS, PASS, PASS, PASS)
    health = tracker.cluster("a")
    assert health.state == ClusterState.DEGRADED
    assert health.score.success_ratio == pytest.approx(0.7)
    assert health.reason == f"{DNS} 7/10 recent probes passed, last timeout"


def test_slow_answers_degrade_a_passing_cluster(tracker: HealthTracker, feed: Feed) -> None:
    """Checks passing near the timeout make the cluster degraded, with the latency named."""
    slow = ProbeResult.passed(0.7)
    feed(TCP, PASS, PASS)
    feed(DNS, slow, slow)
    health = tracker.cluster("a")
    assert health.state == ClusterState.DEGRADED
    assert health.score.latency_factor < 0.75
    assert health.reason == f"{DNS} slow: 700ms mean, timeout 800ms"


def test_views_carry_config_and_score(tracker: HealthTracker, feed: Feed) -> None:
    """Views list clusters in config order with base weight, capacity and score."""
    feed(HTTP, PASS, PASS)
    a, b = tracker.views()
    assert (a.name, a.base_weight, a.capacity_rps) == ("a", 60, 1000)
    assert (b.name, b.state, b.score, b.capacity_rps) == ("b", ClusterState.HEALTHY, 1.0, None)


def test_check_status_fields(tracker: HealthTracker, feed: Feed) -> None:
    """Each check reports kind, target, last ok, latency, error and the failure run."""
    feed(DNS, TIMEOUT, TIMEOUT)
    dns, tcp = tracker.checks("a")
    assert dns["kind"] == "dns"
    assert dns["target"] == "127.0.0.1:5301 api.default.svc.cluster.local"
    assert (dns["ok"], dns["latency_ms"], dns["consecutive_failures"]) == (False, 800.0, 2)
    assert dns["error"] == "timeout: no answer in 800ms"
    assert dns["verdict"] is None
    assert (tcp["ok"], tcp["latency_ms"], tcp["error"]) == (None, None, None)
    assert tracker.checks("nope") == []


def test_ready_once_every_cluster_has_a_verdict(tracker: HealthTracker, feed: Feed) -> None:
    """all_have_verdicts holds once no cluster is unknown, failing ones included."""
    feed(DNS, TIMEOUT, TIMEOUT, TIMEOUT)
    assert not tracker.all_have_verdicts()
    feed(HTTP, PASS, PASS)
    assert tracker.all_have_verdicts()


def test_result_for_a_removed_job_is_refused(tracker: HealthTracker) -> None:
    """A result for a key not configured is not recorded."""
    assert not tracker.record("gone/tcp/tcp 127.0.0.1:9", PASS, 1.0)


def test_reload_keeps_surviving_checks_and_drops_the_rest(
        tracker: HealthTracker, feed: Feed) -> None:
    """After a reload surviving checks keep their verdict; new ones start unknown."""
    feed(DNS, PASS, PASS)
    feed(TCP, PASS, PASS)
    feed(HTTP, TIMEOUT, TIMEOUT, TIMEOUT)
    tracker.update_config(config("""\
        clusters:
          - name: a
            weight: 70
            dns: {server: 127.0.0.1:5301, names: [api.default.svc.cluster.local]}
            checks:
              - tcp: 127.0.0.1:8101
              - tcp: 127.0.0.1:8102
          - name: c
            weight: 30
            checks:
              - http: http://127.0.0.1:8301/healthz
        """))
    assert [v.name for v in tracker.views()] == ["a", "c"]
    a = tracker.cluster("a")
    assert a.state == ClusterState.UNKNOWN
    assert a.reason == "no verdict yet from 1 of 3 checks"
    assert [c["verdict"] for c in tracker.checks("a")] == ["passing", "passing", None]
    assert tracker.views()[0].base_weight == 70
    assert state(tracker, "c") == ClusterState.UNKNOWN
    assert tracker.checks("b") == []


def test_reload_applies_new_rise_from_next_result(tracker: HealthTracker, feed: Feed) -> None:
    """A changed rise leaves the verdict as is and applies to the results that follow."""
    feed(HTTP, TIMEOUT, TIMEOUT, TIMEOUT, PASS)
    tracker.update_config(config(BASE.replace("rise: 2", "rise: 3")))
    assert state(tracker, "b") == ClusterState.UNHEALTHY
    feed(HTTP, PASS)
    assert state(tracker, "b") == ClusterState.UNHEALTHY, "two passes no longer rise"
    feed(HTTP, PASS)
    assert state(tracker, "b").passing


def test_vantage_checks_decide_whether_our_view_is_trusted() -> None:
    """Without vantage checks the view is trusted; with them, only until they fail."""
    assert HealthTracker(config()).vantage_ok()
    text = BASE + "vantage:\n  checks: [{tcp: '127.0.0.1:9999'}]\n"
    tracker = HealthTracker(config(text))
    vantage = next(j for j in all_jobs(config(text).clusters, config(text).vantage)
                   if j.cluster == "@vantage")
    assert tracker.vantage_ok()  # no verdict yet: no evidence against it
    for now in range(3):
        tracker.record(vantage.key, TIMEOUT, float(now))
    assert not tracker.vantage_ok()
    assert [v.name for v in tracker.views()] == ["a", "b"]  # never planned as a cluster
    for now in range(3, 5):
        tracker.record(vantage.key, PASS, float(now))
    assert tracker.vantage_ok()


def test_observed_since_breaks_at_a_gap_and_while_overdue(tracker: HealthTracker) -> None:
    """A cluster is observed from the start of its checks' unbroken run of results; a gap
    longer than two jittered intervals and a timeout (a stalled process, a restart) starts a
    new run, and a check overdue right now makes the cluster unobserved (``inf``)."""
    keys = {job.label: job.key for job in all_jobs(config().clusters)}
    gap = tracker.gap
    assert gap == pytest.approx(2 * 2.0 * 1.2 + 0.8)
    assert tracker.observed_since("a", 0.0) == math.inf  # no result yet
    for at in (1.0, 3.0, 5.0):
        tracker.record(keys[DNS], PASS, at)
        tracker.record(keys[TCP], PASS, at + 0.5)
    assert tracker.observed_since("a", 6.0) == 1.5
    assert tracker.observed_since("a", 5.5 + gap + 0.1) == math.inf  # overdue
    tracker.record(keys[DNS], PASS, 30.0)
    tracker.record(keys[TCP], PASS, 30.5)
    assert tracker.observed_since("a", 31.0) == 30.5
    assert [v.observed_since for v in tracker.views(31.0)] == [30.5, math.inf]
    assert [v.observed_since for v in tracker.views()] == [-math.inf, -math.inf]


def test_check_status_dict_has_every_field() -> None:
    """The hand-written as_dict keeps up with the dataclass: every field, same values."""
    status = CheckStatus(kind="dns", target="127.0.0.1:53 a.test",
                         label="dns 127.0.0.1:53 a.test", ok=False, latency_ms=1.5,
                         error="timeout: no answer",
                         consecutive_failures=2, verdict="failing", success_ratio=0.5,
                         latency_factor=1.0)
    assert status.as_dict() == dataclasses.asdict(status)


def test_score_alone_is_the_cluster_score() -> None:
    config = parse(textwrap.dedent("""\
        clusters:
          - {name: a, weight: 1, checks: [{tcp: "127.0.0.1:1"}, {tcp: "127.0.0.1:2"}]}
        """))
    tracker = HealthTracker(config)
    for step, job in enumerate(all_jobs(config.clusters, config.vantage) * 5):
        result = ProbeResult.passed(0.3, "ok") if step % 3 else \
            ProbeResult.failed(0.8, "timeout", "no answer")
        tracker.record(job.key, result, float(step))
    assert tracker.score("a") == tracker.cluster("a").score
