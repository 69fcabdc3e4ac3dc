"""The distributed mode's settings: where etcd is, this replica's vantage name, and how many
vantages must agree (CONTRACT v2, "Distributed mode (etcd)")."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from failover.config.addresses import HostPort
from failover.config.base import Name, Strict, located
from failover.config.durations import PositiveDuration
from failover.config.tls import ClientTls

_PREFIX = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")

MIN_LEASE_TTL = 2.0
"""Seconds: etcd grants at least ceil(1.5 x election timeout), 2 s at its default 1 s
timeout; a shorter TTL would silently be a longer one."""
KEEPALIVES_PER_TTL = 3
"""The lease is renewed every TTL/3, as etcd's own Go client does: a renewal may fail twice
before the lease can lapse."""


class Etcd(Strict):
    endpoints: list[HostPort] = Field(min_length=1)
    """Client addresses of the etcd members; calls move on to the next when one cannot
    answer."""
    prefix: str = "/failover"
    """Every key lives under it: one prefix per deployment sharing an etcd."""
    lease_ttl: PositiveDuration = 6.0
    """Seconds a replica's lease (its leadership and its published verdicts) outlives its
    last renewal."""
    timeout: PositiveDuration = 2.0
    """Seconds one request to one member may take."""
    tls: ClientTls | None = None
    """CA, and client certificate and key: with it the endpoints are spoken to over HTTPS
    (etcd's ``--cert-file``, ``--client-cert-auth``); without, plain HTTP."""

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not _PREFIX.match(value):
            msg = (f"prefix {value!r} must be /-separated names of letters, digits, '.', '_' "
                   "or '-', starting with '/' and not ending with it (e.g. /failover/prod)")
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _renewal_fits(self) -> Etcd:
        if self.lease_ttl < MIN_LEASE_TTL:
            raise located(("lease_ttl",), f"{self.lease_ttl:g}s is below etcd's shortest "
                          f"lease ({MIN_LEASE_TTL:g}s at its default election timeout)")
        period = self.lease_ttl / KEEPALIVES_PER_TTL
        # At most the period: a renewal that meets two slow members in a row still lands
        # within the TTL (2 x timeout + the period <= lease_ttl).
        if self.timeout > period + 1e-9:
            raise located(("timeout",), (
                f"{self.timeout:g}s exceeds the renewal period, lease_ttl / "
                f"{KEEPALIVES_PER_TTL} = {period:g}s: slow members would let the lease lapse "
                "between renewals; lower timeout or raise lease_ttl"))
        return self


class Coordination(Strict):
    etcd: Etcd
    vantage: Name
    """This replica's name, unique per replica: where it probes from."""
    quorum: Literal["majority"] | int = "majority"
    """Fresh vantages that must see a cluster failing before it counts as failing;
    ``majority`` is more than half of the fresh ones."""
    min_vantages: int = Field(2, ge=1)
    """With fewer fresh vantages than this, the plan fails static."""

    @field_validator("quorum")
    @classmethod
    def _positive(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            msg = f"quorum must be 'majority' or a number of vantages of at least 1, got {value}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _quorum_reachable(self) -> Coordination:
        if isinstance(self.quorum, int) and self.quorum > self.min_vantages:
            raise located(("quorum",), (
                f"{self.quorum} exceeds min_vantages ({self.min_vantages}): with "
                f"{self.min_vantages} fresh vantages the plan is live, yet no cluster could "
                "ever count as failing; lower quorum or raise min_vantages"))
        return self
