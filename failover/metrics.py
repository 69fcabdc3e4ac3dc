"""Every metric the daemon exports, built on a registry passed in so tests read values back."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from failover import __version__

RAMP_ACTIONS = ("start", "timed", "fallback", "await", "advance", "hold", "back_off", "resume")
"""Every value a ramp's ``action`` takes (failover.planner.ramp), so each series exists."""
_PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


# A `_created` series beside every counter and histogram doubles the page at fleet scale, and
# Prometheus stores it only when asked to (created-timestamp-zero-ingestion).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


class Metrics:
    """CONTRACT's ``failover_*`` metrics, plus the counters that keep errors from going unseen."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.cluster_share = Gauge(
            "failover_cluster_share", "Planned fraction of traffic now sent to the cluster.",
            ["cluster"], registry=registry)
        self.cluster_target_share = Gauge(
            "failover_cluster_target_share", "Fraction the policy wants for the cluster.",
            ["cluster"], registry=registry)
        self.cluster_state = Gauge(
            "failover_cluster_state", "1 for the cluster's current state, 0 for the others.",
            ["cluster", "state"], registry=registry)
        self.cluster_health_score = Gauge(
            "failover_cluster_health_score", "Health score from recent probes, 0..1.",
            ["cluster"], registry=registry)
        self.cluster_rank = Gauge(
            "failover_cluster_rank", "Rank of the cluster, 1 is best.", ["cluster"],
            registry=registry)
        self.probes = Counter(
            "failover_probes", "Probes run, by result (ok or the failure class).",
            ["cluster", "kind", "result"], registry=registry)
        self.probe_duration = Histogram(
            "failover_probe_duration_seconds", "Time from first request to verdict.",
            ["cluster", "kind"], buckets=_PROBE_BUCKETS, registry=registry)
        self.probes_skipped = Counter(
            "failover_probes_skipped",
            "Scheduled probes not run: budget (rate cap reached) or overlap (previous running).",
            ["cluster", "kind", "reason"], registry=registry)
        self.probe_requests = Counter(
            "failover_probe_requests",
            "Requests sent to targets, retries included (what the budget caps).",
            ["kind"], registry=registry)
        self.decisions = Counter(
            "failover_decisions", "Planner decisions.", ["cluster", "action", "reason"],
            registry=registry)
        self.recoveries_active = Gauge(
            "failover_recoveries_active", "Clusters ramping back.", registry=registry)
        self.recoveries_queued = Gauge(
            "failover_recoveries_queued", "Clusters waiting for a recovery slot.",
            registry=registry)
        self.recovery_ramps = Gauge(
            "failover_recovery_ramps",
            "Recovering clusters by the last move of their ramp: timed, fallback (signals "
            "missing or stale: the timed pace), await, advance, hold, back_off, start.",
            ["action"], registry=registry)
        self.recovery_ramp_level = Gauge(
            "failover_recovery_ramp_level",
            "Fraction of its target share a recovering cluster may take now.", ["cluster"],
            registry=registry)
        self.recovery_slots = Gauge(
            "failover_recovery_slots", "Recoveries that may run at once (adaptive admission).",
            registry=registry)
        self.cluster_limit_share = Gauge(
            "failover_cluster_limit_share",
            "Share live signals hold a serving cluster to, while they do (adaptive).",
            ["cluster"], registry=registry)
        self.frozen = Gauge(
            "failover_frozen", "1 while automatic weight changes are stopped.", ["reason"],
            registry=registry)
        self.plan_version = Gauge(
            "failover_plan_version", "Version of the current plan.", registry=registry)
        self.actuator_applies = Counter(
            "failover_actuator_applies", "Plan applications by actuator and result.",
            ["actuator", "result"], registry=registry)
        self.actuator_last_success = Gauge(
            "failover_actuator_last_success_timestamp_seconds",
            "Unix time of the actuator's last successful apply.", ["actuator"],
            registry=registry)
        self.actuator_drift = Counter(
            "failover_actuator_drift",
            "Differences found between the data plane and the applied plan (a weight changed "
            "by hand, a record removed), each re-applied.", ["actuator"], registry=registry)
        self.actuator_applied_version = Gauge(
            "failover_actuator_applied_plan_version",
            "Version of the last plan the actuator applied; behind failover_plan_version while "
            "it lags.", ["actuator"], registry=registry)
        self.config_reloads = Counter(
            "failover_config_reloads", "Config reloads by result.", ["result"],
            registry=registry)
        self.build_info = Gauge(
            "failover_build_info", "Always 1; the version label says which build runs.",
            ["version"], registry=registry)
        self.event_loop_lag = Histogram(
            "failover_event_loop_lag_seconds", "How late the event loop wakes a timer.",
            buckets=_LAG_BUCKETS, registry=registry)
        self.tls_expiry = Gauge(
            "failover_tls_certificate_expiry_timestamp_seconds",
            "When the certificate a listener serves expires (Unix time).", ["listener"],
            registry=registry)
        self.errors = Counter(
            "failover_errors",
            "Errors handled without stopping a loop, by where they happened.", ["where"],
            registry=registry)
        self.fenced_refused = Counter(
            "failover_fenced_writes_refused",
            "Actuator writes refused because this replica is no longer the leader: by its "
            "own check before the write, or by the data plane holding a newer epoch.",
            ["actuator"], registry=registry)
        self.admin_auth_refused = Counter(
            "failover_admin_auth_refused",
            "Admin calls refused for want of a valid token: unauthorized (401), or "
            "rate_limited (429: too many wrong tokens from one peer).", ["answer"],
            registry=registry)
        self.http_rejected = Counter(
            "failover_http_rejected",
            "Requests a listener refused before any handler saw them: request line or "
            "headers it could not parse, over-long lines, bytes that are not HTTP.",
            ["listener"], registry=registry)
        # Known places start at 0, so the first error is an increase Prometheus can see.
        self.leader = Gauge(
            "failover_leader", "1 while this replica leads (distributed mode), else 0.",
            registry=registry)
        self.vantage_fresh = Gauge(
            "failover_vantage_fresh",
            "1 while the vantage's verdicts are fresh (and, on the leader, trusted), else 0.",
            ["vantage"], registry=registry)
        for where in ("planner", "persist", "reload", "actuator_drift", "etcd_value",
                      "discovery"):
            self.errors.labels(where)
        # CPU, memory and open file descriptors of the daemon itself.
        ProcessCollector(registry=registry)
        self.build_info.labels(version=__version__).set(1)
        self.config_reloads.labels(result="ok")
        self.config_reloads.labels(result="error")
        self.recoveries_active.set(0)
        self.recoveries_queued.set(0)
        for action in RAMP_ACTIONS:
            self.recovery_ramps.labels(action).set(0)
