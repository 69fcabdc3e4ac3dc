"""What a simulation run produces: time series per cluster, evacuations, peaks and errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Series:
    """One cluster sampled at each planner tick; None before it was added."""

    share: list[float | None] = field(default_factory=list)
    offered_rps: list[float | None] = field(default_factory=list)
    """share x demand."""
    capacity_rps: list[float | None] = field(default_factory=list)
    """Effective capacity: capacity_rps x warmth, 0 while down; None when unlimited."""
    state: list[str | None] = field(default_factory=list)
    """The state the policy gave the cluster."""
    recovering: list[bool | None] = field(default_factory=list)
    """Up but not back in full: cold, waiting or recovering (see ``Peak.recovery``)."""


@dataclass(frozen=True)
class Evacuation:
    at: float
    """When the fault started (the cluster went from up to down)."""
    cluster: str
    fault: str
    after: float | None
    """Seconds from the fault to the first tick where its share was 0; None: never, before
    the fault was lifted or the run ended."""


@dataclass(frozen=True)
class Peak:
    """Highest offered load / effective capacity while up; None: never loaded, or unlimited."""

    overall: float | None
    recovery: float | None
    """Only while this cluster was recovering: up (its faults lifted) but cold, or held by the
    recovery gate (waiting, recovering)."""
    planned: float | None = None
    """Highest planned load (share x the demand the plan was made for, retries left out)
    over effective capacity as the plan took effect: above 1, the policy planned it past
    what it could serve."""


@dataclass(frozen=True)
class Marker:
    at: float
    cluster: str
    what: str
    """``dns timeout``, ``http ok``, ``added``...: the scenario event."""


@dataclass(frozen=True)
class RequestTotals:
    """Requests over the whole run (rps integrated over seconds)."""

    total: float
    errored: float
    down: float
    """Errored because sent to a down cluster."""
    overload: float
    """Errored because beyond a cluster's effective capacity."""
    unplaced: float
    """Errored because no cluster got them (shares summing below 1)."""
    dependency: float = 0.0
    """Errored because the shared dependency failed their cache miss (model v2)."""
    floor: float = 0.0
    """The fewest errored requests any policy could have here (`oracle`)."""

    @property
    def errored_fraction(self) -> float:
        return self.errored / self.total if self.total > 0 else 0.0

    @property
    def avoidable(self) -> float:
        """Errored requests beyond the floor: what the policy could have saved."""
        return max(0.0, self.errored - self.floor)


@dataclass
class Result:
    scenario: str
    policy: str
    seed: int
    duration: float
    tick: float
    times: list[float]
    demand_rps: list[float]
    clusters: dict[str, Series]
    capacity_rps: dict[str, float | None]
    """Each cluster's configured capacity_rps."""
    evacuations: list[Evacuation]
    peaks: dict[str, Peak]
    requests: RequestTotals
    events: list[Marker]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["requests"]["errored_fraction"] = self.requests.errored_fraction
        doc["requests"]["avoidable"] = round(self.requests.avoidable, 3)
        return doc
