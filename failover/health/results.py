"""What one probe found. Probes produce it, health consumes it; both agree on this shape only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailureClass = Literal[
    "timeout",            # no answer within the probe's timeout
    "servfail",           # DNS SERVFAIL
    "nxdomain",           # DNS NXDOMAIN
    "refused",            # DNS REFUSED, or TCP/HTTP connection refused
    "no_answer",          # DNS NOERROR with no records of the asked type
    "unexpected_answer",  # DNS answer lacks an expected address
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
