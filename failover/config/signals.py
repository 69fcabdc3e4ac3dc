"""Where the closed-loop recovery's live load signals come from: a Prometheus and its
queries."""

from __future__ import annotations

from pydantic import Field, model_validator

from failover.config.addresses import HttpUrl
from failover.config.base import MIN_PERIOD, Strict, located
from failover.config.durations import Duration

CLUSTER_PLACEHOLDER = "{cluster}"
"""Stands for the cluster's name in a per-cluster PromQL query (replaced literally: PromQL
uses braces of its own)."""


class SignalQueries(Strict):
    """PromQL expressions, one per signal; each may be left out (that signal is then missing,
    which never counts as good)."""

    utilization: str | None = None
    """0..1: load over what the cluster (or dependency) can serve right now; values above 1
    are read as 1 (saturated)."""
    error_ratio: str | None = None
    """0..1: failed requests over all requests."""
    latency_ratio: str | None = None
    """Latency over its unloaded value; 1 is no inflation."""

    @model_validator(mode="after")
    def _at_least_one(self) -> SignalQueries:
        if self.utilization is None and self.error_ratio is None and self.latency_ratio is None:
            msg = "give at least one of 'utilization', 'error_ratio' or 'latency_ratio'"
            raise ValueError(msg)
        for key in ("utilization", "error_ratio", "latency_ratio"):
            query = getattr(self, key)
            if query is not None and not query.strip():
                raise located((key,), "a query must not be empty")
        return self


class PrometheusSignals(Strict):
    url: HttpUrl
    """Base URL of a Prometheus HTTP API (``/api/v1/query`` is appended)."""
    queries: SignalQueries
    """Per-cluster queries. With ``{cluster}`` in it, a query runs once per cluster with the
    name put in; without it, it runs once and each series is matched to a cluster by its
    ``cluster_label`` label (one query for the whole fleet)."""
    shared: SignalQueries | None = None
    """Optional queries for a dependency every cluster shares (a database, an origin): while
    they are configured, recoveries are admitted only as it has room."""
    cluster_label: str = Field("cluster", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Label naming the cluster in the series of a query without ``{cluster}``."""
    interval: Duration = 5.0
    """Seconds between two rounds of queries."""
    timeout: Duration = 2.0
    """Seconds one query may take before it counts as failed."""
    lag: Duration = 10.0
    """Seconds by which a query's value trails its evaluation time (scrape interval plus
    half the rate window): the instant a sample is taken to describe."""
    max_queries_per_second: float = Field(20.0, gt=0)
    """Do no harm to Prometheus either: queries beyond this rate wait for the next round."""

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> PrometheusSignals:
        if self.shared is not None:
            for key in ("utilization", "error_ratio", "latency_ratio"):
                if CLUSTER_PLACEHOLDER in (getattr(self.shared, key) or ""):
                    raise located(("shared", key), f"a shared query is about no one cluster: "
                                                   f"{CLUSTER_PLACEHOLDER} has no meaning here")
        if self.interval < MIN_PERIOD:
            raise located(("interval",), "interval must be at least 1ms")
        if self.timeout > self.interval:
            raise located(("timeout",), f"timeout ({self.timeout:g}s) must not exceed "
                                        f"interval ({self.interval:g}s)")
        return self


class SignalsConfig(Strict):
    """Where the closed-loop recovery's live load signals come from."""

    prometheus: PrometheusSignals | None = None
    """Without it, the probes' own results (error ratio, latency inflation) are the signals."""
