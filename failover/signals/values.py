"""What a round of signal queries is made of, and what a Prometheus reply says of each
cluster: pure values, apart from the source that fetches them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from failover.config.signals import CLUSTER_PLACEHOLDER
from failover.model import Sample
from failover.signals.api import Point, QueryFailed, Reply
from failover.signals.metrics import SignalName, Target

Kind = Literal["cluster", "fleet", "shared"]
"""A per-cluster query (``{cluster}`` put in), a fleet-wide one (series matched by label),
or a shared one."""

_SHARED = "shared"
_FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Query:
    kind: Kind
    signal: SignalName
    expr: str
    cluster: str | None = None
    """The cluster a per-cluster query is for."""

    @property
    def target(self) -> Target:
        return "shared" if self.kind == "shared" else "cluster"

    @property
    def key(self) -> str:
        """Who the query is about, for logs: a cluster's name, ``fleet`` or ``shared``."""
        if self.cluster is not None:
            return self.cluster
        return _SHARED if self.kind == "shared" else _FLEET


@dataclass(frozen=True, slots=True)
class Value:
    value: float
    at: float
    """Loop clock of the instant the value describes."""


def clamp(signal: SignalName, value: float) -> float:
    # A utilization above 1 is a saturated cluster: 1. Ratios cannot be negative; a negative
    # one comes from a counter reset in a rate() and means no errors, not fewer than none.
    if signal == "latency_ratio":
        return max(0.0, value)
    return min(1.0, max(0.0, value))


def sample(values: Mapping[SignalName, Value]) -> Sample | None:
    if not values:
        return None

    def get(signal: SignalName) -> float | None:
        found = values.get(signal)
        return None if found is None else found.value

    # Only as fresh as its stalest part: a fresh utilization must not make an old error
    # ratio look current.
    return Sample(measured_at=min(v.at for v in values.values()),
                  utilization=get("utilization"), error_ratio=get("error_ratio"),
                  latency_ratio=get("latency_ratio"))


def values_of(query: Query, reply: Reply, clusters: Sequence[str], *, loop_now: float,
              wall_now: float, lag: float, cluster_label: str,
              ) -> tuple[dict[str | None, Value | None], list[str]]:
    """What a reply says of each key it covers (None: missing), and notes on values it
    could not use; `QueryFailed` when the reply cannot be trusted at all."""
    notes: list[str] = []

    def value(point: Point) -> Value | None:
        if point.value is None:
            notes.append(point.note)
            return None
        # A Prometheus clock ahead of ours must not date a value in the future.
        age = max(0.0, wall_now - point.timestamp)
        return Value(clamp(query.signal, point.value), loop_now - age - lag)

    points = reply.points
    if query.kind != "fleet":
        key = query.cluster  # None: the shared dependency
        if len(points) > 1:
            raise QueryFailed("bad_reply", f"{len(points)} series where one was expected: "
                                           "aggregate the query to one value (sum, max)")
        return {key: value(points[0]) if points else None}, notes
    label = cluster_label
    if reply.result_type == "scalar":
        raise QueryFailed("bad_reply", f"a scalar has no {label!r} label to match a "
                                       f"cluster by: aggregate by ({label}) or use "
                                       f"{CLUSTER_PLACEHOLDER}")
    wanted = set(clusters)
    found: dict[str | None, Value | None] = dict.fromkeys(clusters)
    seen: set[str] = set()
    unlabelled = 0
    for point in points:
        name = point.labels.get(label)
        if name is None:
            unlabelled += 1
            continue
        if name not in wanted:
            continue  # a cluster Prometheus knows and this daemon does not manage
        if name in seen:
            raise QueryFailed("bad_reply", f"several series for {label}={name!r}: "
                                           f"aggregate by ({label})")
        seen.add(name)
        found[name] = value(point)
    if unlabelled:
        notes.append(f"{unlabelled} series without a {label!r} label ignored")
    return found, notes
