"""Saved state: round trip across clocks, and a clear fallback on a missing or corrupt file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from failover.daemon import persist
from failover.daemon.overrides import Drain, Freeze, Overrides
from failover.model import ClusterPlan, ClusterState, Plan


def a_plan() -> Plan:
    return Plan(7, 100.0, (
        ClusterPlan("a", 0.75, 0.75, ClusterState.HEALTHY, 1, 1.0, 50, "ok"),
        ClusterPlan("b", 0.25, 0.5, ClusterState.RECOVERING, 2, 0.9, 50, "ramp",
                    recovery_started=90.0, failed_recoveries=1),
        ClusterPlan("c", 0.0, 0.0, ClusterState.UNHEALTHY, 3, 0.0, 10, "down",
                    cooldown_until=130.0, failed_recoveries=2),
    ))


def test_round_trip_moves_timers_to_the_new_clock() -> None:
    """Shares, states and counts survive; timers keep their wall-clock meaning on a new loop."""
    overrides = Overrides({"c": Drain("maintenance", 1000.0, 2000.0)}, Freeze("incident", 990.0))
    before = persist.Clocks(loop_now=100.0, wall_now=1_000_000.0)
    data = persist.encode(persist.document(a_plan(), overrides, before))
    after = persist.Clocks(loop_now=5.0, wall_now=1_000_030.0)  # restarted 30 s later
    saved = persist.decode(data, after)
    assert saved.overrides == overrides
    assert saved.plan is not None
    assert saved.plan.version == 7
    assert saved.plan.shares == {"a": 0.75, "b": 0.25, "c": 0.0}
    b = next(c for c in saved.plan.clusters if c.name == "b")
    assert b.state == ClusterState.RECOVERING
    assert b.recovery_started == pytest.approx(5.0 - 40.0)  # began 40 s before the new now
    c = next(c for c in saved.plan.clusters if c.name == "c")
    assert c.cooldown_until == pytest.approx(5.0)  # 30 s had remained; 30 s have passed
    assert c.failed_recoveries == 2


def test_document_does_not_change_with_time_alone() -> None:
    """Nothing volatile is saved, so an unchanged plan is not rewritten every tick."""
    plan = a_plan()
    first = persist.document(plan, Overrides(), persist.Clocks(100.0, 1_000_000.0))
    later = persist.document(plan, Overrides(), persist.Clocks(100.5, 1_000_000.5000004))
    assert first == later


@pytest.mark.parametrize(("content", "why"), [
    (b"{not json", "unusable"),
    (b'{"format": 99}', "unknown format 99"),
    (b'{"format": 1, "plan": {"version": 3}}', "missing or malformed field"),
    (b'{"format": 1, "plan": {"version": 3, "frozen": false, "clusters": '
     b'[{"name": "a", "share": 2, "target_share": 1, "state": "healthy", "base_weight": 1}]}}',
     "share outside"),
    (b'{"format": 1, "plan": {"version": 3, "frozen": false, "clusters": '
     b'[{"name": "a", "share": 1, "target_share": 1, "state": "fine", "base_weight": 1}]}}',
     "unusable"),
])
def test_corrupt_state_warns_and_starts_from_config(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, why: str) -> None:
    """An unusable file gives a warning naming it and the problem, and no plan."""
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        saved = persist.load(path, persist.Clocks(0.0, 0.0))
    assert saved.plan is None
    assert str(path) in caplog.text
    assert why in caplog.text


def test_missing_state_is_a_fresh_start(tmp_path: Path) -> None:
    """No file: no plan, no overrides, no warning needed."""
    saved = persist.load(tmp_path / "state.json", persist.Clocks(0.0, 0.0))
    assert (saved.plan, saved.overrides) == (None, Overrides())


def test_an_unusable_file_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    """The next save would overwrite it: what it held may still be wanted."""
    path = tmp_path / "state.json"
    path.write_bytes(b"{not json")
    persist.load(path, persist.Clocks(0.0, 0.0))
    assert not path.exists()
    assert (tmp_path / "state.json.unusable").read_bytes() == b"{not json"


def test_a_ramp_start_in_the_future_is_taken_as_now(caplog: pytest.LogCaptureFixture) -> None:
    """A recovery_started a day ahead held the ramp at 0 % until then."""
    clocks = persist.Clocks(loop_now=100.0, wall_now=1_000_000.0)
    doc = persist.document(a_plan(), Overrides(), clocks)
    doc["plan"]["clusters"][1]["recovery_started"] = 1_000_000.0 + 86_400
    with caplog.at_level(logging.WARNING):
        saved = persist.decode(persist.encode(doc), clocks)
    assert saved.plan is not None
    b = next(c for c in saved.plan.clusters if c.name == "b")
    assert b.recovery_started == pytest.approx(100.0)
    assert "b.recovery_started is 86400s in the future; taken as now" in caplog.text
