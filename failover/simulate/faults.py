"""A cluster's injected faults, and the probe result each kind of check gets from them."""

from __future__ import annotations

from dataclasses import dataclass

from failover.config.budget import ProbeKind
from failover.model import FailureClass, ProbeResult
from failover.simulate.scenario import DnsFault, FaultEvent, HttpFault

PROBE_LATENCY = 0.005
"""Seconds a probe takes when it gets an answer (pass or fail): a healthy nearby target."""


@dataclass(frozen=True, slots=True)
class Faults:
    dns: DnsFault = "ok"
    http: HttpFault = "ok"

    @property
    def down(self) -> bool:
        """Requests to the cluster fail: its service is broken, or its DNS is, which breaks
        its service discovery. (``bad_status`` counts: a service answering 500s is down.)"""
        return self.dns != "ok" or self.http != "ok"

    def apply(self, event: FaultEvent) -> Faults:
        return Faults(event.dns or self.dns, event.http or self.http)

    def failure(self, kind: ProbeKind) -> FailureClass | None:
        """Why a probe of this kind fails now; None when it passes."""
        if self.http == "down":
            return "timeout"  # nothing answers, not even the cluster's resolver
        if kind == "dns":
            return None if self.dns == "ok" else self.dns
        if self.http == "ok" or (kind == "tcp" and self.http == "bad_status"):
            return None
        return self.http


def probe_result(kind: ProbeKind, faults: Faults, timeout: float) -> ProbeResult:
    """What a probe of ``kind`` reports: a timeout lasts the whole probe timeout, any other
    answer comes back after ``PROBE_LATENCY``."""
    failure = faults.failure(kind)
    if failure is None:
        return ProbeResult.passed(PROBE_LATENCY)
    latency = timeout if failure == "timeout" else PROBE_LATENCY
    return ProbeResult.failed(latency, failure, f"simulated {failure}")
