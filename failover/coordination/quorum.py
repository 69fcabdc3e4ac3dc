"""Pure: the leader's view of the fleet from every replica's verdicts. A cluster counts as
failing only when a quorum of fresh, trusted vantages sees it failing; a vantage that sees
nearly everything failing while the others do not is excluded (its own network is the
likelier fault, as Route 53, Cloudflare and Kubernetes' node controller all assume); too few
trusted vantages and nothing is decided at all.

No I/O and no clock: reports carry the leader's receive time, ``now`` is passed in.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from failover.model import ClusterState, ClusterView

Verdict = Literal["passing", "failing", "unknown"]

NEARLY_ALL = 0.8
"""A vantage seeing at least this fraction of the fleet failing (and all but at most one
cluster) is suspect of being the one at fault..."""
OTHERS_AT_MOST = 0.5
"""...when the other trusted vantages, on average, see at most this fraction failing."""


@dataclass(frozen=True, slots=True)
class ClusterVerdict:
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """One replica's published verdicts, as the leader last received them."""

    vantage: str
    clusters: Mapping[str, ClusterVerdict]
    received_at: float
    """The leader's loop clock when this version of the report arrived: freshness is judged
    on one clock, never on the publisher's."""
    self_check_ok: bool = True
    """The replica's own vantage checks (a known-good target) pass."""


@dataclass(frozen=True, slots=True)
class VantageState:
    name: str
    fresh: bool
    age_s: float
    excluded: bool
    reason: str
    """Why it is excluded or stale; empty when it counts."""


@dataclass(frozen=True, slots=True)
class QuorumView:
    vantages: list[VantageState]
    trusted: list[str]
    """Fresh vantages not excluded: the ones whose verdicts count."""
    needed: int
    """Failing verdicts from trusted vantages that make a cluster failing."""
    per_cluster: dict[str, dict[str, Verdict]]
    """Each cluster's verdict from each fresh vantage (for status)."""
    unsure: str | None
    """Why nothing may be decided (too few trusted vantages); None when the view holds."""
    agreed: bool = False
    """The trusted vantages agree: enough of them, and split (failing from some, yet short
    of the quorum) on at most half the clusters. Then a fleet-wide failure they report is a
    fact to act on, not a reason to doubt our view."""

SPLIT_AT_MOST = 0.5
"""Fraction of the clusters the trusted vantages may split on and still agree."""


def verdict_of(state: ClusterState) -> Verdict:
    if state.passing:
        return "passing"
    if state == ClusterState.UNHEALTHY:
        return "failing"
    return "unknown"


def quorum_view(reports: Sequence[Report], clusters: Sequence[str], now: float, *,
                stale_after: float, quorum: Literal["majority"] | int,
                min_vantages: int) -> QuorumView:
    fresh = [r for r in reports if now - r.received_at <= stale_after]
    excluded = _excluded(fresh, clusters)
    trusted = [r for r in fresh if r.vantage not in excluded]
    needed = len(trusted) // 2 + 1 if quorum == "majority" else quorum
    states = []
    for report in sorted(reports, key=lambda r: r.vantage):
        age = max(0.0, now - report.received_at)
        is_fresh = age <= stale_after
        reason = excluded.get(report.vantage, "") if is_fresh else \
            f"no report for {age:.1f}s (stale after {stale_after:g}s)"
        states.append(VantageState(report.vantage, is_fresh, round(age, 3),
                                   report.vantage in excluded, reason))
    unsure = None
    if len(trusted) < min_vantages:
        unsure = (f"{len(trusted)} trusted fresh vantage{'s' if len(trusted) != 1 else ''} "
                  f"of {len(reports)}, fewer than min_vantages {min_vantages}")
    per_cluster = {name: {r.vantage: r.clusters.get(name, ClusterVerdict("unknown")).verdict
                          for r in fresh} for name in clusters}
    split = 0
    for name in clusters:
        verdicts = [r.clusters.get(name, ClusterVerdict("unknown")).verdict for r in trusted]
        failing = verdicts.count("failing")
        split += 0 < failing < needed and "passing" in verdicts
    agreed = unsure is None and split <= SPLIT_AT_MOST * len(clusters)
    return QuorumView(states, sorted(r.vantage for r in trusted), needed, per_cluster, unsure,
                      agreed)


def _failing_fraction(report: Report, clusters: Sequence[str]) -> float:
    failing = sum(1 for name in clusters
                  if report.clusters.get(name, ClusterVerdict("unknown")).verdict == "failing")
    return failing / len(clusters) if clusters else 0.0


def _excluded(fresh: Sequence[Report], clusters: Sequence[str]) -> dict[str, str]:
    """Fresh vantages not to trust, with why: their own checks fail, or they see nearly
    everything failing while the rest do not."""
    out = {r.vantage: "its own vantage checks fail" for r in fresh if not r.self_check_ok}
    healthy = [r for r in fresh if r.vantage not in out]
    fractions = {r.vantage: _failing_fraction(r, clusters) for r in healthy}
    for report in healthy:
        failing = round(fractions[report.vantage] * len(clusters))
        if len(clusters) < 2 or fractions[report.vantage] < NEARLY_ALL \
                or failing < len(clusters) - 1:
            continue
        others = [fractions[r.vantage] for r in healthy if r.vantage != report.vantage]
        if not others:
            continue  # nobody to disagree with: it may be right
        mean = math.fsum(others) / len(others)
        if mean <= OTHERS_AT_MOST:
            out[report.vantage] = (
                f"sees {failing} of {len(clusters)} clusters failing where the others see "
                f"{mean:.0%} on average: its own network is the likelier fault")
    return out


def apply_quorum(views: Sequence[ClusterView], view: QuorumView,
                 reports: Mapping[str, Report]) -> list[ClusterView]:
    """The leader's own views, with each cluster's failing-or-not decided by the quorum:
    failing when enough trusted vantages say so (though it passes here), passing otherwise
    (though it fails here), erring toward availability as Route 53 does. Clusters no trusted
    vantage has a verdict on keep the leader's own view."""
    return [_decided(cluster, view, reports) for cluster in views]


def _decided(cluster: ClusterView, view: QuorumView,
             reports: Mapping[str, Report]) -> ClusterView:
    verdicts = {name: reports[name].clusters.get(cluster.name, ClusterVerdict("unknown"))
                for name in view.trusted if name in reports}
    failing = sorted(name for name, v in verdicts.items() if v.verdict == "failing")
    passing = [name for name, v in verdicts.items() if v.verdict == "passing"]
    if len(failing) >= view.needed:
        if cluster.state == ClusterState.UNHEALTHY:
            return cluster
        detail = "; ".join(f"{name}: {verdicts[name].reason}" for name in failing)
        return dataclasses.replace(
            cluster, state=ClusterState.UNHEALTHY, score=0.0,
            reason=f"failing from {len(failing)} of {len(verdicts)} vantages ({detail})")
    if passing and cluster.state == ClusterState.UNHEALTHY:
        return dataclasses.replace(
            cluster, state=ClusterState.DEGRADED,
            reason=(f"failing from {len(failing)} of {len(verdicts)} vantages, fewer than "
                    f"the {view.needed} needed: {cluster.reason}"))
    return cluster
