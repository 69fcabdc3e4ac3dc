"""How probes run and what they check: the schedule and budget, and each kind of check
with the most requests one probe of it may send (what the budget is proved with)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from failover.config.addresses import HostPort, HttpUrl, IpAddress
from failover.config.base import MIN_PERIOD, Strict, by_key, located
from failover.config.durations import Duration, PositiveDuration


class Budget(Strict):
    per_target_per_second: float = Field(2.0, gt=0)
    """Hard cap on requests (retries included) to any one address, per second."""
    total_per_second: float = Field(500.0, gt=0)
    """Cap on all probe requests per second, whatever their target."""
    max_in_flight: int = Field(64, ge=1)
    """Probes running at once; keeps the event loop far from saturation."""


class Probing(Strict):
    interval: Duration = 2.0
    """Seconds between two runs of one check."""
    timeout: Duration = 0.8
    """Seconds one probe may take, retries included, before it counts as a timeout."""
    jitter: float = Field(0.2, ge=0, lt=1)
    """Fraction of the interval by which each run is moved at random, so probes never align."""
    rise: int = Field(2, ge=1)
    """Consecutive passes before a failing check counts as passing again."""
    fall: int = Field(3, ge=1)
    """Consecutive failures before a passing check counts as failing."""
    budget: Budget = Budget()

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> Probing:
        # At least a millisecond: below that the jittered gap rounds to nothing.
        if self.interval < MIN_PERIOD:
            raise located(("interval",), "interval must be at least 1ms")
        if self.timeout < MIN_PERIOD:
            raise located(("timeout",), "timeout must be at least 1ms")
        if self.timeout > self.interval:
            raise located(
                ("timeout",),
                f"timeout ({self.timeout:g}s) must not exceed interval ({self.interval:g}s)",
            )
        return self


def dns_name(name: str, where: tuple[str | int, ...]) -> str:
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253 or not all(0 < len(lb) < 64 for lb in labels):
        raise located(where, f"not a valid DNS name: {name!r}")
    return name


class Freshness(Strict):
    """A TXT record whose text is a Unix timestamp that something inside the cluster keeps
    advancing: a resolver that answers from what it cached after its control plane went
    away still answers, but its heartbeat stops."""

    name: str
    max_age: PositiveDuration
    """Older than this (or not a timestamp at all), the check fails as ``stale``."""

    @field_validator("name")
    @classmethod
    def _a_domain_name(cls, name: str) -> str:
        return dns_name(name, ())


class DnsCheck(Strict):
    REQUESTS_PER_PROBE: ClassVar[int] = 2
    """A UDP query, and its retry over TCP when the answer is truncated."""

    server: HostPort
    """The cluster's own resolver, queried directly with no cache in between."""
    names: list[str] = Field(min_length=1)
    """Names that must resolve; each is its own probe."""
    expect: list[IpAddress] = Field(default_factory=list)
    """Optional: addresses that must all appear in every answer."""
    qtype: Literal["A", "AAAA"] = "A"
    freshness: Freshness | None = None
    """Optional: a heartbeat read from the same server, probed as one more name."""

    @model_validator(mode="after")
    def _expect_fits_qtype(self) -> DnsCheck:
        version = 4 if self.qtype == "A" else 6
        for index, address in enumerate(self.expect):
            if address.version != version:
                raise located(("expect", index), f"{address} is not an IPv{version} address: "
                              f"an {self.qtype} answer can never hold it")
        return self

    @field_validator("names")
    @classmethod
    def _names_are_domain_names(cls, names: list[str]) -> list[str]:
        for index, name in enumerate(names):
            dns_name(name, (index,))
        return names


class HttpCheck(Strict):
    REQUESTS_PER_PROBE: ClassVar[int] = 1
    """One request on a fresh connection; redirects are not followed."""

    http: HttpUrl
    expect_status: int = Field(200, ge=100, le=599)
    expect_body: str | None = None
    """Optional substring the response body must contain (first 64 KiB are read)."""


class TcpCheck(Strict):
    REQUESTS_PER_PROBE: ClassVar[int] = 1

    tcp: HostPort


Check = Annotated[
    Annotated[HttpCheck, Tag("http")] | Annotated[TcpCheck, Tag("tcp")],
    Discriminator(
        by_key({"http": ("http", HttpCheck), "tcp": ("tcp", TcpCheck)}),
        custom_error_type="check_kind",
        custom_error_message="a check needs exactly one of 'http' or 'tcp'",
    ),
]
