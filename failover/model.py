"""Values every layer shares, frozen, comparable and free of I/O: what a probe found,
what health says of a cluster, and the plans and decisions made from that."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

FailureClass = Literal[
    "timeout",            # no answer within the probe's timeout
    "servfail",           # DNS SERVFAIL
    "nxdomain",           # DNS NXDOMAIN
    "refused",            # DNS REFUSED, or TCP/HTTP connection refused
    "no_answer",          # DNS NOERROR with no records of the asked type
    "unexpected_answer",  # DNS answer lacks an expected address
    "stale",              # DNS heartbeat TXT older than its max_age, or not a timestamp
    "dns_error",          # any other DNS rcode, or a malformed DNS reply
    "bad_status",         # HTTP status other than expected
    "bad_body",           # HTTP body lacks the expected substring
    "network_error",      # unreachable, reset, or another socket error
    "protocol_error",     # the peer spoke something we could not parse
]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    latency: float
    """Seconds from the first request sent to the verdict."""
    failure_class: FailureClass | None = None
    detail: str = ""
    """Short human text: the rcode, status, answer or error."""

    @staticmethod
    def passed(latency: float, detail: str = "") -> ProbeResult:
        return ProbeResult(True, latency, None, detail)

    @staticmethod
    def failed(latency: float, failure_class: FailureClass, detail: str) -> ProbeResult:
        return ProbeResult(False, latency, failure_class, detail)



class ClusterState(StrEnum):
    UNKNOWN = "unknown"          # no verdict yet
    HEALTHY = "healthy"
    DEGRADED = "degraded"        # passing, ranked down
    UNHEALTHY = "unhealthy"
    WAITING = "waiting"          # passing again, queued for a recovery slot
    RECOVERING = "recovering"    # ramping up
    DRAINED = "drained"          # operator

    @property
    def passing(self) -> bool:
        return self in (ClusterState.HEALTHY, ClusterState.DEGRADED)


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What health says of one cluster at one instant, plus its config."""

    name: str
    state: ClusterState
    score: float
    """0..1, from recent results and latency."""
    base_weight: float
    reason: str
    capacity_rps: float | None = None
    observed_since: float = -math.inf
    """Since when every check of the cluster has reported without a gap (planner clock);
    ``inf`` while one is overdue. A ramp counts only observed time, so a stalled daemon or a
    restart never passes for time spent ramping. The default: observed all along."""
    stale: bool = False
    """Unknown because its checks stopped reporting (not because they never did)."""


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    """The planner's ``now`` (loop clock seconds) when the decision was made."""
    version: int
    cluster: str
    action: str
    """What happened: evacuate, recovery_start, ramp, recovery_failed, capacity_cap, spill,
    drain, remove, rebalance, back_off, fail_static, vantage, resume, shed."""
    from_share: float
    to_share: float
    reason: str
    """For people: names the failing check, the weights, the clusters that caused a move."""
    cause: str = ""
    """Machine-readable, from `failover.planner.decisions.CAUSES` (a metric label)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Load signals of one cluster (or of the shared dependency), as one source saw them.

    Each value is None when the source has none; a missing value never counts as good.
    """

    measured_at: float
    """Planner clock (loop seconds) of the instant the values describe: a query's evaluation
    time minus the lag its source is configured with, the oldest probe result in a window,
    or the simulated instant."""
    utilization: float | None = None
    """0..1: the load on the cluster over what it can serve right now; 1 is saturated."""
    error_ratio: float | None = None
    """0..1: failed requests over all requests."""
    latency_ratio: float | None = None
    """Latency over the cluster's own unloaded latency; 1 is no inflation."""


@dataclass(frozen=True, slots=True)
class Signals:
    """What the closed-loop recovery reads: per-cluster samples and the shared dependency's."""

    clusters: Mapping[str, Sample] = field(default_factory=dict)
    shared: Sample | None = None
    shared_expected: bool = False
    """A shared dependency is watched, so a missing ``shared`` is missing data (fall back),
    not the absence of a dependency."""
    source: str = "none"
    """``prometheus``, ``probes``, ``simulated`` or ``none``: shown in status."""


@dataclass(frozen=True, slots=True)
class Ramp:
    """Where a recovering cluster's ramp stands, and why it moved as it did this tick."""

    level: float
    """0..1: the fraction of its target share it may take now."""
    limit: float | None = None
    """Adaptive: the share it may take now (an absolute share, so that a change of its
    target never moves it without a signal); None for a timed ramp."""
    held: float = 0.0
    """The share it carried when admitted (kept through a freeze, say): a recovery never
    takes that away, unless its signals say it is too much."""
    mark: float = 0.0
    """The level (timed) or limit (adaptive) when the signals last moved it: a sample
    measured after ``changed_at`` describes a share at least this large."""
    changed_at: float | None = None
    """Planner clock of the last move on a signal (or of admission): a sample measured
    before it describes a smaller share and cannot justify growing further."""
    backoff_at: float | None = None
    """Planner clock of the last back-off: one overloaded sample backs off once."""
    since: float | None = None
    """Planner clock of its admission: a sample from before describes the cluster while it
    was out, not this ramp."""
    action: str = "start"
    """What this tick did: ``start``, ``timed`` (slow-start pace), ``advance``, ``hold`` or
    ``back_off``."""
    reason: str = ""
    sample: Sample | None = None
    """The signals this tick's step read, None when it had none."""


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    name: str
    share: float
    target_share: float
    state: ClusterState
    rank: int
    score: float
    base_weight: float
    reason: str
    recovery_started: float | None = None
    """Planner clock when the current ramp began (recovering only)."""
    cooldown_until: float | None = None
    """Planner clock before which a new recovery may not start."""
    failed_recoveries: int = 0
    """Consecutive failed recoveries; the cooldown doubles with each."""
    capped: bool = False
    """Held at headroom x capacity."""
    spilled: bool = False
    """Given traffic beyond what its state or capacity allows, because nobody else could take
    it (overflow ``spill``)."""
    ramp: Ramp | None = None
    """The ramp of a recovering cluster (also kept while its verdict lapses)."""
    guard: Ramp | None = None
    """Adaptive: a share limit its signals set on a serving cluster that fails requests."""
    probation_until: float | None = None
    """Planner clock until which failing still counts as a failed recovery."""


@dataclass(frozen=True, slots=True)
class Plan:
    version: int
    """Grows by one with every plan that changes a share."""
    at: float
    clusters: tuple[ClusterPlan, ...]
    frozen: bool = False
    frozen_reason: str | None = None
    decisions: tuple[Decision, ...] = field(default=())
    """The decisions that produced this plan from the previous one."""
    shed: float = 0.0
    """Fraction of demand no cluster is planned for (overflow ``shed``); shares sum to 1 - shed."""
    slots: int | None = None
    """Recoveries that may run at once (adaptive admission); None before any plan."""
    slots_reason: str = ""

    def share(self, name: str) -> float:
        return next((c.share for c in self.clusters if c.name == name), 0.0)

    @property
    def shares(self) -> dict[str, float]:
        return {c.name: c.share for c in self.clusters}
