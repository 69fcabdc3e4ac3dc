"""The signal source's own metrics, on a registry passed in (the daemon's, or a test's).

Labels are a small fixed set: a cluster name or a query string never becomes a label
value, so a fleet of any size, or an operator's PromQL, cannot grow the series count.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Target = Literal["cluster", "shared"]
"""What a query describes: clusters (one each, or the whole fleet at once) or the shared
dependency."""
SignalName = Literal["utilization", "error_ratio", "latency_ratio"]
Result = Literal["ok", "empty", "error", "timeout", "bad_reply", "skipped"]
"""``ok``: at least one usable value. ``empty``: a valid reply with nothing usable (no series,
NaN). ``error``: no reply (connection refused or reset), an HTTP error status or an API
``status: error``. ``timeout``: no reply within ``timeout``. ``bad_reply``: a reply that is
not the API's shape, or a shape the query must not have (several series for one cluster).
``skipped``: not sent, the query budget was spent."""

TARGETS: tuple[Target, ...] = get_args(Target)
SIGNAL_NAMES: tuple[SignalName, ...] = get_args(SignalName)
RESULTS: tuple[Result, ...] = get_args(Result)

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SignalMetrics:
    """``failover_signal_*``: what the queries to Prometheus did, so a blind loop is seen."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.queries = Counter(
            "failover_signal_queries",
            "Signal queries by what they describe, the signal and the result (ok, empty, error, "
            "timeout, bad_reply, or skipped for the query budget).",
            ["target", "signal", "result"], registry=registry)
        self.query_duration = Histogram(
            "failover_signal_query_duration_seconds",
            "Time from sending a signal query to its parsed reply (or failure).",
            ["target"], buckets=_DURATION_BUCKETS, registry=registry)
        self.last_success = Gauge(
            "failover_signal_last_success_timestamp_seconds",
            "Unix time of the last signal query that gave at least one usable value.",
            ["target"], registry=registry)
        self.errors = Counter(
            "failover_signal_errors",
            "Unexpected errors (bugs) in the signal loop, handled without stopping it.",
            registry=registry)
        # Every series exists from the start, so the first failure is an increase Prometheus
        # can see rather than a series appearing.
        for target in TARGETS:
            self.query_duration.labels(target)
            for signal in SIGNAL_NAMES:
                for result in RESULTS:
                    self.queries.labels(target, signal, result)
