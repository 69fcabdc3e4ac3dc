"""Load signals from the probes themselves, for when no Prometheus is configured.

A cluster's HTTP checks (its TCP ones if it has none) are requests like any other: an
overloaded cluster fails some (a saturated service answers them 503 or late) and answers the
rest more slowly. So, over each such check's last ``RESULTS`` results: the error ratio is
the share that failed, and latency inflation is their mean latency over the lowest latency
of its recent window (the cluster's unloaded latency, re-learned as it changes, as Envoy's
minimum-RTT window does), that lowest latency taken as at least the part of the probe
timeout health counts as free (``LATENCY_FREE``): a few milliseconds of jitter on a fast
answer is no queueing. Utilization is unknown. The sample is dated by the oldest result
it uses, so it describes a share only once every one of them came after that share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from failover.health.check import CheckRecord
from failover.health.score import LATENCY_FREE
from failover.model import Sample

RESULTS = 3
"""Results per check a sample reads: a few probe intervals, so a ramp step waits that long."""
SERVICE_KINDS = ("http", "tcp")


def probe_sample(checks: Sequence[CheckRecord], timeout: float) -> Sample | None:
    """The cluster's sample from its service checks; None until each has ``RESULTS``."""
    service = [c for c in checks if c.job.kind == "http"] or \
        [c for c in checks if c.job.kind == "tcp"]
    if not service or any(len(c.recent) < RESULTS for c in service):
        return None
    failed = total = 0
    inflation = 1.0
    oldest = math.inf
    for check in service:
        part = check.memo("sample", timeout, _part)
        failed += part.failed
        total += part.total
        oldest = min(oldest, part.oldest)
        inflation = max(inflation, part.inflation)
    return Sample(oldest, None, failed / total, inflation)


class _Part(NamedTuple):
    failed: int
    total: int
    oldest: float
    inflation: float


def _part(check: CheckRecord, timeout: float) -> _Part:
    """One check's share of its cluster's sample, from its last ``RESULTS`` results."""
    last = list(check.recent)[-RESULTS:]
    passing = [latency for ok, latency in last if ok]
    floor = max(LATENCY_FREE * timeout,
                min((latency for ok, latency in check.recent if ok), default=0.0))
    inflation = sum(passing) / len(passing) / floor if passing and floor > 0 else 1.0
    return _Part(sum(not ok for ok, _ in last), len(last), check.stamps[-RESULTS], inflation)
