"""A scenario: demand over time, a load model, and timed faults and new clusters, from YAML.

Strict like the config (unknown keys are errors, durations as ``30s``/``5m``/``1h``), checked
against the config it runs with (named clusters exist, added ones make a valid config), and
reported with the config loader's ``file:line: key.path: message`` location mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from failover.config.base import Strict, by_key, located
from failover.config.durations import Duration, PositiveDuration, format_duration
from failover.config.loader import ConfigError, Problem, error_message, parse_model
from failover.config.models import Cluster, Config, with_clusters

DnsFault = Literal["ok", "timeout", "servfail", "nxdomain", "refused", "no_answer",
                   "unexpected_answer", "stale", "dns_error"]
"""What the cluster's own resolver does: answer (``ok``) or fail its probes with that class
(``stale``: it answers, from what it cached, but its heartbeat stopped)."""

HttpFault = Literal["ok", "down", "timeout", "refused", "network_error", "bad_status"]
"""What the cluster's service does. ``down``: the whole cluster is gone, DNS included;
``bad_status``: answers 500s but still accepts connections, so only HTTP checks fail."""


class DemandPoint(Strict):
    at: Duration
    rps: float = Field(ge=0)
    """Total requests per second at ``at``; linear in between points, flat beyond the ends."""


class Retries(Strict):
    """How clients retry a failed request (every policy's clients alike)."""

    max_attempts: int = Field(3, ge=1, le=10)
    """Attempts per request, the first included (the SRE book: at most 3)."""
    budget: float | None = Field(0.1, ge=0)
    """Retries allowed, as a fraction of fresh requests (the SRE book's per-client retry
    budget: 10 %); null: no budget, only ``max_attempts``."""


class SharedDependency(Strict):
    """A dependency the clusters' cache misses load (a database, an origin, a registry)."""

    capacity_rps: float = Field(gt=0)
    """Misses per second it serves; beyond, it loses goodput as a cluster does."""
    clusters: list[str] | None = None
    """Clusters that depend on it; null: all, added ones included."""


class LoadParams(Strict):
    model: Literal["v1", "v2"] = "v2"
    """``v2``: the fluid model with congestion collapse, retries, warm-up by requests served
    and a shared dependency (docs/simulate.md); ``v1``: overload errors only what exceeds
    capacity, and cold clusters warm with time."""
    cold_factor: float = Field(0.3, gt=0, le=1)
    """Fraction of its capacity a cold cluster serves (empty caches, scaled-in replicas)."""
    warmup: Duration = 300.0
    """v1: seconds of taking traffic for a cold cluster to get back to full capacity,
    linearly. v2: seconds of serving its full capacity that fill its cache (95 % of the way):
    warm-up is counted in requests served, so a cluster given less takes longer."""
    cold_after: Duration = 30.0
    """Seconds without serving (share 0, or down) after which a cluster is cold."""
    hit_ratio: float = Field(0.95, gt=0, lt=1)
    """v2: a warm cluster's cache hit ratio; a cold one starts at 0."""
    reject_cost: float = Field(0.2, ge=0, lt=1)
    """v2: work a request refused under overload costs, as a fraction of serving one (the SRE
    book: rejecting is not free); goodput falls as offered load rises past capacity."""
    retries: Retries = Retries()
    probes_see_load: bool = True
    """v2: an HTTP health check is a request like any: an overloaded cluster fails it as
    often as it fails requests."""
    step: PositiveDuration = 0.25
    """v2: seconds per step of the fluid model; a retry comes one step after its failure."""
    shared: SharedDependency | None = None

    @model_validator(mode="after")
    def _cold_is_possible(self) -> LoadParams:
        if self.model == "v2" and self.cold_factor < 1 and self.cold_factor <= 1 - self.hit_ratio:
            raise located(("cold_factor",), (
                f"cold_factor {self.cold_factor:g} needs a hit ratio above "
                f"{1 - self.cold_factor:g}: with hit_ratio {self.hit_ratio:g} a warm cluster "
                "would already be as slow as a cold one"))
        return self


class SignalParams(Strict):
    """v2: the live load signals the daemon would read, as a Prometheus scraping the clusters
    gives them: late, noisy, sometimes missing."""

    period: PositiveDuration = 5.0
    """Seconds between two samples (the scrape interval)."""
    delay: Duration = 5.0
    """Seconds a sample is old when it can be read (scrape plus rate window and query)."""
    noise: float = Field(0.05, ge=0, le=1)
    """Relative standard deviation of each value."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Probability that a cluster's sample is lost."""


class FaultEvent(Strict):
    at: Duration
    cluster: str
    dns: DnsFault | None = None
    """Omitted: the DNS fault stays as it was."""
    http: HttpFault | None = None
    """Omitted: the service fault stays as it was."""

    @model_validator(mode="after")
    def _changes_something(self) -> FaultEvent:
        if self.dns is None and self.http is None:
            msg = "give 'dns', 'http' or both (use 'ok' to lift a fault)"
            raise ValueError(msg)
        return self

    def label(self) -> str:
        """``dns timeout``, ``http ok``, or both: what changed, for summaries and plots."""
        return " + ".join(f"{kind} {fault}" for kind, fault in
                          (("dns", self.dns), ("http", self.http)) if fault is not None)


class AddEvent(Strict):
    at: Duration
    add: Cluster
    """A new cluster, the same shape as one in the config's ``clusters``."""


Event = Annotated[
    Annotated[FaultEvent, Tag("fault")] | Annotated[AddEvent, Tag("add")],
    Discriminator(
        by_key({"cluster": ("fault", FaultEvent), "add": ("add", AddEvent)}),
        custom_error_type="event_kind",
        custom_error_message="an event needs exactly one of 'cluster' (a fault) or 'add'",
    ),
]


class Provisioned(Strict):
    """What the provisioning hook brings when the daemon's config calls it (its
    ``provisioning`` section says when): each call, the next cluster here, ``delay`` later."""

    delay: Duration
    """From the webhook call to the new cluster answering its first probe: creating an EKS
    cluster alone was measured at 13-16 minutes across 21 regions (docs/simulate.md)."""
    clusters: list[Cluster] = Field(min_length=1)
    """In the order the calls bring them; a call past the last brings nothing."""


def with_cluster(config: Config, cluster: Cluster) -> Config:
    """The config with ``cluster`` appended; pydantic's ValidationError when the result is
    not a valid config."""
    return with_clusters(config, [cluster])


class Scenario(Strict):
    name: str = Field(min_length=1)
    duration: PositiveDuration
    demand: list[DemandPoint] = Field(default_factory=list)
    """Empty: the config's ``demand_rps``, constant."""
    load: LoadParams = LoadParams()
    signals: SignalParams = SignalParams()
    events: list[Event] = Field(default_factory=list)
    provisioning: Provisioned | None = None
    """The capacity the config's provisioning hook brings, and how long it takes."""
    evidence: bool = False
    """Whether the orchestrator's own view is proven (its vantage checks pass, or a quorum of
    vantages agrees): a fleet-wide failure is then acted on, not failed static. The
    simulator's probes always see the truth; this says whether the planner may know it.
    ``failover simulate --evidence`` sets it."""

    @field_validator("demand")
    @classmethod
    def _increasing(cls, points: list[DemandPoint]) -> list[DemandPoint]:
        for index in range(1, len(points)):
            if points[index].at <= points[index - 1].at:
                raise located((index, "at"), "demand points must be in increasing 'at' order")
        return points

    @model_validator(mode="after")
    def _fits_config(self, info: ValidationInfo) -> Scenario:
        """Cross-checks against the config this scenario runs with (validation context)."""
        config = info.context.get("config") if isinstance(info.context, dict) else None
        if not isinstance(config, Config):
            msg = "a scenario is validated against a config: pass context={'config': config}"
            raise TypeError(msg)
        if not self.demand and config.demand_rps is None:
            raise located(("demand",), "no demand: give 'demand' here or 'demand_rps' in the "
                                       "config")
        known = {c.name for c in config.clusters} | {
            e.add.name for e in self.events if isinstance(e, AddEvent)}
        shared = self.load.shared
        for index, name in enumerate(shared.clusters or [] if shared else []):
            if name not in known:
                raise located(("load", "shared", "clusters", index),
                              f"unknown cluster {name!r}")
        for index in self.order():
            event = self.events[index]
            if event.at >= self.duration:
                raise located(("events", index, "at"), (
                    f"event at {format_duration(event.at)} is not before the end of the "
                    f"scenario ({format_duration(self.duration)})"))
            if isinstance(event, FaultEvent):
                if config.cluster(event.cluster) is None:
                    raise located(("events", index, "cluster"),
                                  f"unknown cluster {event.cluster!r}")
                continue
            if config.cluster(event.add.name) is not None:
                raise located(("events", index, "add", "name"),
                              f"cluster {event.add.name!r} already exists at that time")
            try:
                config = with_cluster(config, event.add)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise located(("events", index, "add"),
                              f"the config with this cluster is invalid: {error_message(first)}"
                              ) from exc
        self._provisioning_fits(config)
        return self

    def _provisioning_fits(self, config: Config) -> None:
        """Whatever the events have added, each provisioned cluster must fit after them."""
        if self.provisioning is None:
            return
        if config.provisioning is None:
            raise located(("provisioning",), "the config has no provisioning section: "
                                             "nothing would ever call for these clusters")
        for event in self.events:
            if isinstance(event, AddEvent):
                config = with_cluster(config, event.add)
        for index, cluster in enumerate(self.provisioning.clusters):
            if config.cluster(cluster.name) is not None:
                raise located(("provisioning", "clusters", index, "name"),
                              f"cluster {cluster.name!r} already exists")
            try:
                config = with_cluster(config, cluster)
            except ValidationError as exc:
                raise located(("provisioning", "clusters", index),
                              "the config with this cluster is invalid: "
                              f"{error_message(exc.errors()[0])}") from exc

    def order(self) -> list[int]:
        """Indices of ``events`` by time; simultaneous events keep their order in the file."""
        return sorted(range(len(self.events)), key=lambda index: self.events[index].at)


def parse_scenario(text: str, config: Config, source: str = "<scenario>") -> Scenario:
    """Validate ``text`` against ``config``; ConfigError listing every problem with its line."""
    return parse_model(Scenario, text, source, {"config": config})


def load_scenario(path: Path | str, config: Config) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem(1, "", f"cannot read scenario: {exc}")]) from exc
    return parse_scenario(text, config, str(path))
