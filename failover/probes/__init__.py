"""Probes: one module per kind, one signature (`ProbeFn`), looked up by kind in `PROBES`."""

from __future__ import annotations

from failover.config import ProbeKind
from failover.probes.base import ProbeFn
from failover.probes.dns import probe_dns
from failover.probes.http import probe_http
from failover.probes.tcp import probe_tcp

PROBES: dict[ProbeKind, ProbeFn] = {"dns": probe_dns, "http": probe_http, "tcp": probe_tcp}

__all__ = ["PROBES", "ProbeFn"]
