"""What a lab cluster can be told to do wrong, and the counters that show what reached it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

DnsFault = Literal["ok", "timeout", "servfail", "nxdomain", "refused", "slow", "truncate", "wrong",
                   "stale"]
"""``timeout`` drops queries; ``slow`` answers after the delay; ``truncate`` sets TC on every
UDP reply so clients retry over TCP; ``wrong`` answers with an address the checks do not expect;
``stale`` answers as ``ok`` but the heartbeat record stops at its value when the fault was set,
as when whatever keeps it fresh inside the cluster has died while DNS still serves."""

HttpFault = Literal["ok", "500", "timeout", "refuse", "slow"]
"""``timeout`` holds requests without answering; ``refuse`` closes the listening socket so
connections are refused; ``slow`` answers after the delay."""

DNS_FAULTS: tuple[str, ...] = get_args(DnsFault)
HTTP_FAULTS: tuple[str, ...] = get_args(HttpFault)

DEFAULT_DELAY = 1.0
"""Seconds a ``slow`` fault waits before answering: above typical probe timeouts of 500-800 ms."""


class FaultRequest(BaseModel):
    """Body of ``POST /v1/clusters/{name}/fault``: what to change; omitted fields stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dns: DnsFault | None = None
    http: HttpFault | None = None
    delay: float | None = Field(default=None, ge=0, le=3600)
    """Seconds for the ``slow`` faults."""


@dataclass
class Faults:
    dns: DnsFault = "ok"
    http: HttpFault = "ok"
    delay: float = DEFAULT_DELAY


@dataclass
class Counters:
    """Requests that reached the cluster, whatever happened to them next."""

    dns_udp: int = 0
    dns_tcp: int = 0
    http: int = 0
    ok: int = 0
    """HTTP requests answered 200, health checks included."""
    failed: int = 0
    """HTTP requests answered 500 by an injected fault."""
    over_capacity: int = 0
    """HTTP requests answered 503 by the capacity model."""
