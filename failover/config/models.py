"""The configuration as frozen pydantic models; defaults live here with their unit and reason."""

from __future__ import annotations

import grp
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from failover.config.actuators import (
    Actuator,
    DnsActuator,
    FileActuator,
    HaproxyActuator,
)
from failover.config.addresses import (
    MAX_UNIX_PATH,
    AdminAddress,
    Endpoint,
    ListenAddress,
    UnixSocket,
)
from failover.config.base import Name, Strict, dotted, located, resolve
from failover.config.budget import Job, all_jobs, worst_case_rates
from failover.config.coordination import Coordination
from failover.config.discovery import Discovery
from failover.config.durations import Duration, PositiveDuration
from failover.config.probing import Check, DnsCheck, Probing
from failover.config.provisioning import Provisioning
from failover.config.signals import (
    SignalsConfig,
)
from failover.config.tls import ServerTls


def _mode(value: object) -> object:
    # "0660" as an operator writes it (YAML would read an unquoted 0660 as octal already).
    if isinstance(value, str):
        if not re.fullmatch(r"0?[0-7]{3}", value.strip()):
            msg = f"expected a file mode such as \"0600\" or \"0660\", got {value!r}"
            raise ValueError(msg)
        return int(value.strip(), 8)
    return value


SocketMode = Annotated[int, BeforeValidator(_mode), Field(ge=0, le=0o777)]


class Listen(Strict):
    status: ListenAddress = Field(Endpoint("127.0.0.1", 9470),
                                  json_schema_extra={"default": "127.0.0.1:9470"})
    """Status listener: the status page at /, /metrics, /healthz, /readyz, /v1/status,
    /v1/decisions."""
    admin: AdminAddress = Field(Endpoint("127.0.0.1", 9471),
                                json_schema_extra={"default": "127.0.0.1:9471"})
    """Break-glass admin API; loopback by default so it is never exposed by accident;
    ``unix:PATH`` for a Unix socket, relative to the config's folder."""
    admin_socket_mode: SocketMode = 0o600
    """The admin socket file's mode (``unix:`` only), e.g. ``"0660"`` with
    ``admin_socket_group``: who may connect is who may write to it."""
    admin_socket_group: str | None = None
    """Group given the admin socket file (``unix:`` only); by default the daemon's."""
    admin_token_file: Path | None = None
    """File holding the admin bearer tokens, one per line (several while rotating);
    re-read when it changes. FAILOVER_ADMIN_TOKEN overrides it."""
    tls: ServerTls | None = None
    """Certificate, key and optional client CA: every TCP listener then speaks HTTPS only,
    TLS 1.2 and later (docs/security.md)."""

    @field_validator("admin_token_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve(value, info)

    @field_validator("admin")
    @classmethod
    def _socket_relative_to_config(cls, value: Endpoint | UnixSocket,
                                   info: ValidationInfo) -> Endpoint | UnixSocket:
        if not isinstance(value, UnixSocket):
            return value
        path = resolve(value.path, info)
        if len(os.fsencode(path)) > MAX_UNIX_PATH:
            msg = (f"unix:{path} is {len(os.fsencode(path))} bytes long; a Unix socket's path "
                   f"is at most {MAX_UNIX_PATH}: choose a shorter one")
            raise ValueError(msg)
        return UnixSocket(path)

    @field_validator("admin_socket_group")
    @classmethod
    def _group_exists(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                grp.getgrnam(value)
            except KeyError as exc:
                msg = f"no group named {value!r} on this host"
                raise ValueError(msg) from exc
        return value

    @model_validator(mode="after")
    def _apart(self) -> Listen:
        status, admin = self.status, self.admin
        if isinstance(admin, UnixSocket):
            return self
        wildcard = {"0.0.0.0", "::"}  # noqa: S104 - the addresses compared, not bound
        if status.port and status.port == admin.port and (
                status.host == admin.host or {status.host, admin.host} & wildcard):
            raise located(("admin",), f"{self.admin} is where the status listener is "
                          f"({self.status}): the two need their own ports")
        return self


class Adaptive(Strict):
    """The closed loop of ``recovery.mode: adaptive`` (docs/recovery.md): how a ramp reads its
    cluster's live signals, and the shared dependency's."""

    initial: float = Field(0.05, gt=0, le=1)
    """First share of a ramp, as a fraction of its target: small enough for a cold cluster."""
    target_utilization: float = Field(0.85, gt=0, lt=1)
    """A ramp grows toward this utilization and holds at or above it."""
    max_utilization: float = Field(0.95, gt=0, le=1)
    """At or above it a ramp backs off: the cluster is at its limit."""
    error_ok: float = Field(0.01, ge=0, lt=1)
    """Error ratio at or above which a ramp holds."""
    max_error_ratio: float = Field(0.05, gt=0, le=1)
    """Error ratio at or above which a ramp backs off."""
    latency_ok: float = Field(1.25, ge=1)
    """Latency inflation at or above which a ramp holds (Envoy's adaptive concurrency: 1.25)."""
    max_latency_ratio: float = Field(2.0, gt=1)
    """Latency inflation at or above which a ramp backs off."""
    max_growth: float = Field(2.0, gt=1)
    """Largest factor a ramp grows by on one fresh sample."""
    max_signal_age: PositiveDuration = 30.0
    """Seconds after which a sample is stale: the ramp falls back to the timed pace."""
    shared_target: float = Field(0.7, gt=0, lt=1)
    """Shared dependency utilization under which more recoveries are admitted."""
    shared_max: float = Field(0.9, gt=0, le=1)
    """Shared dependency utilization at or above which the newest ramp backs off and the
    admission limit halves."""
    max_concurrent: int | None = Field(None, ge=1)
    """Cap on recoveries admitted at once however much room the signals show; none: the fleet."""

    @model_validator(mode="after")
    def _ordered(self) -> Adaptive:
        for low, high in (("target_utilization", "max_utilization"),
                          ("error_ok", "max_error_ratio"),
                          ("latency_ok", "max_latency_ratio"),
                          ("shared_target", "shared_max")):
            if getattr(self, low) >= getattr(self, high):
                raise located((low,), f"{low} ({getattr(self, low):g}) must be below {high} "
                                      f"({getattr(self, high):g})")
        return self


class Recovery(Strict):
    mode: Literal["timed", "adaptive"] = "adaptive"
    """``timed``: ``max_concurrent`` ramps at once, each over ``slow_start``. ``adaptive``: ramps
    advance, hold or back off on live load signals and admission follows the shared
    dependency's room; missing or stale signals fall back to the timed pace."""
    max_concurrent: int = Field(1, ge=1)
    """Clusters ramping back at once (adaptive: where admission starts, and what it falls back
    to while signals are missing)."""
    slow_start: Duration = 60.0
    """Seconds to ramp a recovering cluster from 0 to its target share (adaptive: the pace of
    the fallback, and the slowest a ramp with healthy signals goes)."""
    cooldown: Duration = 30.0
    """Seconds to wait after a failed recovery; doubles per consecutive failure."""
    max_cooldown: Duration = 600.0
    """Cap on the doubled cooldown, in seconds."""
    adaptive: Adaptive = Adaptive()


class Policy(Strict):
    tick: PositiveDuration = 1.0
    """Seconds between two planning rounds."""
    min_healthy_fraction: float = Field(0.3, ge=0, le=1)
    """Below this share of base weight passing, keep the last plan (fail static)."""
    headroom: float = Field(0.8, gt=0, le=1)
    """Plan a cluster up to this fraction of its capacity."""
    overflow: Literal["spill", "shed"] = "spill"
    """Demand beyond the healthy clusters' capacity: spread over the rest, or drop it."""
    max_shift_per_tick: float = Field(0.25, gt=0, le=1)
    """Fraction of all traffic that may move per tick, evacuations excepted."""
    recovery: Recovery = Recovery()


class Cluster(Strict):
    name: Name
    weight: float = Field(ge=0)
    """Base weight: the cluster's share, relative to the others, when all are healthy."""
    capacity_rps: float | None = Field(None, gt=0)
    """Optional requests per second the cluster can serve."""
    dns: DnsCheck | None = None
    checks: list[Check] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_checks(self) -> Cluster:
        if self.dns is None and not self.checks:
            msg = f"cluster {self.name!r} has nothing to probe: give it 'dns' or 'checks'"
            raise ValueError(msg)
        return self


class Vantage(Strict):
    """Targets that must pass for the orchestrator's own view to be trusted (a local
    resolver, a known-good endpoint). While they fail, the plan is frozen: reason ``vantage``."""

    dns: DnsCheck | None = None
    checks: list[Check] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_checks(self) -> Vantage:
        if self.dns is None and not self.checks:
            msg = "vantage has nothing to probe: give it 'dns' or 'checks', or leave it out"
            raise ValueError(msg)
        return self


def _unique(jobs: list[Job]) -> None:
    """Two checks of one cluster on the same target would be scheduled as one job, and
    one of them silently never run."""
    first: dict[str, Job] = {}
    for job in jobs:
        if job.key in first:
            raise located(job.path, f"{job.label} is already checked at "
                          f"{dotted(first[job.key].path)}: each target once per cluster")
        first[job.key] = job


class Config(Strict):
    listen: Listen = Listen()
    state_dir: Path = Field(Path("./var"), validate_default=True)
    """Persisted plan and states, and the audit log; relative to the config file (the default
    too, so the daemon's working directory never matters)."""
    probing: Probing = Probing()
    policy: Policy = Policy()
    demand_rps: float | None = Field(None, gt=0)
    """Optional total demand; with clusters' capacity_rps it enables capacity-aware planning."""
    clusters: list[Cluster] = Field(min_length=1)
    vantage: Vantage | None = None
    actuators: list[Actuator] = Field(default_factory=list)
    signals: SignalsConfig = SignalsConfig()
    coordination: Coordination | None = None
    """Distributed mode (etcd); without it the daemon runs alone."""
    provisioning: Provisioning | None = None
    """A webhook asked for new capacity when planned capacity falls short."""
    discovery: Discovery | None = None
    """More clusters, read from files."""

    @field_validator("state_dir")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve(value, info)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        seen: dict[str, int] = {}
        for index, cluster in enumerate(self.clusters):
            if cluster.name in seen:
                raise located(
                    ("clusters", index, "name"),
                    f"duplicate cluster name {cluster.name!r}"
                    f" (first at clusters[{seen[cluster.name]}])",
                )
            seen[cluster.name] = index
        if sum(cluster.weight for cluster in self.clusters) <= 0:
            raise located(("clusters",), "all cluster weights are 0: at least one must be above 0")
        own = {self.state_file: "the daemon's state", self.audit_file: "the audit log"}
        for index, actuator in enumerate(self.actuators):
            if isinstance(actuator, FileActuator) and actuator.path in own:
                raise located(("actuators", index, "path"), (
                    f"{actuator.path} is {own[actuator.path]}: write the weights elsewhere"))
        for index, actuator in enumerate(self.actuators):
            mapped = actuator.servers if isinstance(actuator, HaproxyActuator) else (
                actuator.addresses if isinstance(actuator, DnsActuator) else {}
            )
            key = "servers" if isinstance(actuator, HaproxyActuator) else "addresses"
            for name in mapped:
                if name not in seen:
                    raise located(("actuators", index, key, name), f"unknown cluster {name!r}")
        if self.provisioning is not None and (
                self.demand_rps is None or all(c.capacity_rps is None for c in self.clusters)):
            raise located(("provisioning",), (
                "needs demand_rps and the clusters' capacity_rps: without them no shortfall "
                "can be known, and the webhook would never be called"))
        self._within_budget()
        return self

    def _within_budget(self) -> None:
        """Do no harm: refuse a config whose probes could exceed the budget, retries included."""
        jobs = all_jobs(self.clusters, self.vantage)
        _unique(jobs)
        rates = worst_case_rates(jobs, self.probing)
        budget = self.probing.budget
        for job in jobs:
            rate = rates.per_target[job.target]
            if rate > budget.per_target_per_second + 1e-9:
                raise located(job.path, (
                    f"worst case {rate:.2f} requests/s to {job.endpoint} (retries included) "
                    "exceeds probing.budget.per_target_per_second"
                    f" ({budget.per_target_per_second:g});"
                    " raise probing.interval or probe fewer names there"))
        if rates.total > budget.total_per_second + 1e-9:
            raise located(("probing", "budget", "total_per_second"), (
                f"worst case {rates.total:.2f} requests/s in all exceeds "
                f"probing.budget.total_per_second ({budget.total_per_second:g})"))

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def audit_file(self) -> Path:
        return self.state_dir / "audit.jsonl"

    def cluster(self, name: str) -> Cluster | None:
        return next((c for c in self.clusters if c.name == name), None)


def with_clusters(config: Config, extra: Iterable[Cluster]) -> Config:
    """``config`` with ``extra`` clusters after its own, validated again as a whole, as a
    reload would be (names unique, the probe budget); pydantic's ValidationError if not."""
    fields = {name: getattr(config, name) for name in Config.model_fields}
    return Config.model_validate({**fields, "clusters": [*config.clusters, *extra]})
