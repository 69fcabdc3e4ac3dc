"""CONTRACT's /v1/status document, read from the daemon through `StatusSource`."""

from __future__ import annotations

import asyncio
from typing import Any

from failover.api.source import StatusSource
from failover.model import ClusterPlan, Plan, Ramp, Sample

BATCH = 100
"""Clusters read per turn of the loop by `status_document_in_batches`."""


def status_document(source: StatusSource) -> dict[str, Any]:
    """CONTRACT's /v1/status, read at once."""
    plan = source.current_plan()
    return _document(plan, [] if plan is None else [
        _cluster(c, plan, source) for c in sorted(plan.clusters, key=_rank)], source)


async def status_document_in_batches(source: StatusSource) -> dict[str, Any]:
    """`status_document`, BATCH clusters at a time with the loop let go between: at a
    thousand clusters, reading every check at once stopped the loop for tens of
    milliseconds under full probe load. The plan is one snapshot; each cluster's checks are
    as they were when it was read."""
    plan = source.current_plan()
    clusters: list[dict[str, Any]] = []
    if plan is not None:
        ordered = sorted(plan.clusters, key=_rank)
        for start in range(0, len(ordered), BATCH):
            if start:
                await asyncio.sleep(0)
            clusters.extend(_cluster(c, plan, source) for c in ordered[start:start + BATCH])
    return _document(plan, clusters, source)


def _rank(c: ClusterPlan) -> int:
    return c.rank


def _cluster(c: ClusterPlan, plan: Plan, source: StatusSource) -> dict[str, Any]:
    return {
        "name": c.name,
        "rank": c.rank,
        "state": str(c.state),
        "score": round(c.score, 4),
        "share": round(c.share, 6),
        "target_share": round(c.target_share, 6),
        "base_weight": c.base_weight,
        "reason": c.reason,
        "score_components": source.score_components(c.name),
        "capped": c.capped,
        "spilled": c.spilled,
        "recovery": _recovery(c, plan.at),
        "ramp": None if c.ramp is None else _ramp(c.ramp, plan.at),
        "limit": None if c.guard is None else _ramp(c.guard, plan.at),
        "checks": source.cluster_checks(c.name),
        **_vantages(source.cluster_vantages(c.name)),
    }


def _document(plan: Plan | None, clusters: list[dict[str, Any]],
              source: StatusSource) -> dict[str, Any]:
    return {
        "version": 0 if plan is None else plan.version,
        "frozen": False if plan is None else plan.frozen,
        "frozen_reason": None if plan is None else plan.frozen_reason,
        "shed": 0.0 if plan is None else round(plan.shed, 6),
        "clusters": clusters,
        "recoveries": _recoveries(plan),
        **source.extra_status(),
    }


def _vantages(verdicts: dict[str, str] | None) -> dict[str, Any]:
    return {} if verdicts is None else {"vantages": verdicts}


def _recovery(c: ClusterPlan, now: float) -> dict[str, Any]:
    """Ramp and flap-damping bookkeeping, in seconds relative to the plan's time."""
    return {
        "ramp_elapsed_s": None if c.recovery_started is None
        else round(now - c.recovery_started, 3),
        "cooldown_remaining_s": None if c.cooldown_until is None or c.cooldown_until <= now
        else round(c.cooldown_until - now, 3),
        "failed_recoveries": c.failed_recoveries,
    }


def _sample(sample: Sample | None, now: float) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"utilization": _round(sample.utilization), "error_ratio": _round(sample.error_ratio),
            "latency_ratio": _round(sample.latency_ratio),
            "age_s": round(now - sample.measured_at, 3)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _ramp(ramp: Ramp, now: float) -> dict[str, Any]:
    """Where a ramp (or a serving cluster's limit) stands, what it read and why it moved:
    ``action`` is one of start, timed, fallback, await, advance, hold, back_off."""
    return {"level": round(ramp.level, 4),
            "limit_share": None if ramp.limit is None else round(ramp.limit, 6),
            "mode": "timed" if ramp.limit is None else "adaptive",
            "action": ramp.action, "reason": ramp.reason,
            "signals": _sample(ramp.sample, now),
            "last_move_s": None if ramp.changed_at is None else round(now - ramp.changed_at, 3)}


def _recoveries(plan: Plan | None) -> dict[str, Any]:
    if plan is None:
        return {"active": [], "queued": [], "slots": None, "slots_reason": ""}
    return {
        "active": [c.name for c in plan.clusters if c.state == "recovering"],
        "queued": [c.name for c in plan.clusters if c.state == "waiting"],
        "slots": plan.slots,
        "slots_reason": plan.slots_reason,
    }
