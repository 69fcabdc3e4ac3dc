"""The daemon's memory across restarts: the applied plan, per-cluster states and timers, and
operator overrides, in ``state_dir/state.json``, written atomically on every change.

Planner times are loop-clock seconds, which mean nothing to the next process; they are stored
as wall-clock (unix) times and turned back into the new loop's clock on load. A ramp is
stored by its level, not its start time, so the time the daemon was down never counts as
time spent ramping; a state file from before levels were stored (no ``ramp``) restarts the
ramps of recovering clusters from their share.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.daemon.overrides import Overrides
from failover.model import ClusterPlan, ClusterState, Plan, Ramp

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Saved:
    plan: Plan | None
    overrides: Overrides


class Clocks:
    """Converts between the loop clock and the wall clock, both read once by the caller."""

    def __init__(self, loop_now: float, wall_now: float) -> None:
        self.loop_now = loop_now
        self.offset = wall_now - loop_now

    def to_wall(self, at: float | None) -> float | None:
        return None if at is None else at + self.offset

    def to_loop(self, at: float | None) -> float | None:
        return None if at is None else at - self.offset


def document(plan: Plan | None, overrides: Overrides, clocks: Clocks) -> dict[str, Any]:
    """What is persisted; scores, ranks and reasons are left out: they are re-learned, and
    leaving them out keeps the file from changing every tick."""
    body: dict[str, Any] = {"format": FORMAT, "overrides": overrides.as_dict(), "plan": None}
    if plan is not None and plan.version >= 1:
        body["plan"] = {
            "version": plan.version, "frozen": plan.frozen,
            "frozen_reason": plan.frozen_reason, "shed": plan.shed,
            "clusters": [
                {"name": c.name, "share": c.share, "target_share": c.target_share,
                 "state": str(c.state), "base_weight": c.base_weight,
                 "recovery_started": _rounded(clocks.to_wall(c.recovery_started)),
                 "cooldown_until": _rounded(clocks.to_wall(c.cooldown_until)),
                 "failed_recoveries": c.failed_recoveries,
                 "probation_until": _rounded(clocks.to_wall(c.probation_until)),
                 "ramp": None if c.ramp is None else _ramp(c.ramp, clocks),
                 "guard": None if c.guard is None else _ramp(c.guard, clocks)}
                for c in sorted(plan.clusters, key=lambda c: c.name)],
            "slots": plan.slots,
        }
    return body


def _ramp(ramp: Ramp, clocks: Clocks) -> dict[str, Any]:
    """A ramp's level and the instants its next move depends on; the rest is re-derived."""
    return {"level": round(ramp.level, 6), "held": round(ramp.held, 6),
            "mark": round(ramp.mark, 6),
            "limit": None if ramp.limit is None else round(ramp.limit, 6),
            "changed_at": _rounded(clocks.to_wall(ramp.changed_at)),
            "backoff_at": _rounded(clocks.to_wall(ramp.backoff_at)),
            "since": _rounded(clocks.to_wall(ramp.since))}


def _load_ramp(doc: object, clocks: Clocks, where: str) -> Ramp | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        msg = f"ramp: expected an object, got {doc!r}"
        raise ValueError(msg)
    level = _number(doc["level"])
    if level is None or not 0 <= level <= 1:
        msg = f"ramp level {doc['level']!r} is not in [0, 1]"
        raise ValueError(msg)
    limit = _number(doc.get("limit"))
    if limit is not None and not 0 <= limit <= 1:
        msg = f"ramp limit {limit!r} is not in [0, 1]"
        raise ValueError(msg)
    return Ramp(level, limit=limit, held=_number(doc.get("held")) or 0.0,
                mark=_number(doc.get("mark")) or level,
                changed_at=_past(doc.get("changed_at"), clocks, f"{where}.changed_at"),
                backoff_at=_past(doc.get("backoff_at"), clocks, f"{where}.backoff_at"),
                since=_past(doc.get("since"), clocks, f"{where}.since"),
                action="resume", reason="restored from state.json")


def _legacy_ramp(doc: dict[str, Any]) -> Ramp | None:
    """A recovering cluster saved before levels were: its ramp goes on from its share."""
    if doc.get("state") != ClusterState.RECOVERING:
        return None
    share, target = float(doc["share"]), float(doc["target_share"])
    level = min(1.0, share / target) if target > 0 else 0.0
    return Ramp(level, held=share, mark=level, action="resume",
                reason="restored from an older state.json")


FUTURE_SKEW = 60.0
"""Seconds past now that a saved instant of the past (a ramp's start, its last move) may lie
before it is taken for corrupt: clocks of two runs may disagree a little."""


def _past(value: object, clocks: Clocks, where: str) -> float | None:
    """A saved instant that must lie in the past, on the loop clock. One in the future
    (a clock set wrong, a hand-edited file) would hold its ramp at 0 until then: it is taken
    as now, and said."""
    at = clocks.to_loop(_number(value))
    if at is not None and at > clocks.loop_now + FUTURE_SKEW:
        log.warning("saved state: %s is %.0fs in the future; taken as now", where,
                    at - clocks.loop_now)
        return clocks.loop_now
    return at


def _rounded(at: float | None) -> float | None:
    # The two clocks drift apart by microseconds: unrounded, timers would differ every tick
    # and the file would be rewritten for nothing.
    return None if at is None else round(at, 1)


def encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def decode(data: bytes, clocks: Clocks) -> Saved:
    """Raises ValueError (with what was wrong) on anything but a document `document` made."""
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            msg = f"unknown format {doc.get('format')!r}, expected {FORMAT}"
            raise ValueError(msg)
        overrides = Overrides.from_dict(doc.get("overrides") or {})
        saved = doc.get("plan")
        if saved is None:
            return Saved(None, overrides)
        clusters = tuple(
            ClusterPlan(
                str(c["name"]), float(c["share"]), float(c["target_share"]),
                ClusterState(c["state"]), rank, 0.0, float(c["base_weight"]),
                "restored from state.json, awaiting a verdict",
                _past(c.get("recovery_started"), clocks, f"{c['name']}.recovery_started"),
                clocks.to_loop(_number(c.get("cooldown_until"))),
                int(c.get("failed_recoveries", 0)),
                ramp=_load_ramp(c.get("ramp"), clocks, f"{c['name']}.ramp") or _legacy_ramp(c),
                guard=_load_ramp(c.get("guard"), clocks, f"{c['name']}.guard"),
                probation_until=clocks.to_loop(_number(c.get("probation_until"))))
            for rank, c in enumerate(saved["clusters"], start=1))
        slots = saved.get("slots")
        plan = Plan(int(saved["version"]), clocks.loop_now, clusters,
                    bool(saved["frozen"]), saved.get("frozen_reason"), (),
                    float(saved.get("shed", 0.0)),
                    None if slots is None else int(slots), "restored from state.json")
    except (KeyError, TypeError, AttributeError) as exc:
        msg = f"missing or malformed field: {type(exc).__name__}: {exc}"
        raise ValueError(msg) from exc
    if plan.version < 1 or any(not 0 <= c.share <= 1 for c in plan.clusters):
        msg = "plan version below 1 or a share outside [0, 1]"
        raise ValueError(msg)
    return Saved(plan, overrides)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    msg = f"expected a number or null, got {value!r}"
    raise ValueError(msg)


def load(path: Path, clocks: Clocks) -> Saved:
    """The saved state, or an empty one (with a warning) when missing or unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.info("no saved state at %s: starting from the config", path)
        return Saved(None, Overrides())
    except OSError as exc:
        log.warning("cannot read saved state %s (%s): starting from the config", path, exc)
        return Saved(None, Overrides())
    try:
        return decode(data, clocks)
    except ValueError as exc:
        # Kept aside, not overwritten by the next save: what it held may still be wanted.
        kept = path.with_name(f"{path.name}.unusable")
        try:
            path.replace(kept)
        except OSError as move:
            kept_note = f"could not keep it aside: {move}"
        else:
            kept_note = f"kept as {kept}"
        log.warning("saved state %s is unusable (%s): starting from the config; %s", path,
                    exc, kept_note)
        return Saved(None, Overrides())
