"""The file actuator writes CONTRACT's weights.json atomically and only when the plan changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from failover.actuators.base import Applied, TemporaryActuatorError
from failover.actuators.file import FileActuator
from failover.model import ClusterPlan, ClusterState, Plan


def make_plan(version: int, shares: dict[str, float], *, frozen: bool = False) -> Plan:
    clusters = tuple(
        ClusterPlan(name, share, share, ClusterState.HEALTHY if share else ClusterState.UNHEALTHY,
                    rank, 1.0, 1.0, "all checks passing" if share else "dns timeout x3")
        for rank, (name, share) in enumerate(shares.items(), start=1))
    return Plan(version, 0.0, clusters, frozen, "fail_static" if frozen else None)


async def test_writes_contract_shape(tmp_path: Path) -> None:
    """weights.json carries version, UTC time, frozen and each cluster's share, state, reason."""
    path = tmp_path / "out" / "weights.json"
    await FileActuator(path).apply(Applied(make_plan(3, {"a": 0.75, "b": 0.25}), 1767225600.0))
    doc = json.loads(path.read_text())
    assert doc["version"] == 3
    assert doc["generated_at"] == "2026-01-01T00:00:00Z"
    assert doc["frozen"] is False
    assert doc["clusters"]["a"] == {"share": 0.75, "state": "healthy",
                                    "reason": "all checks passing"}
    assert doc["clusters"]["b"]["share"] == 0.25


async def test_leaves_no_temp_files(tmp_path: Path) -> None:
    """Only weights.json remains in the folder after several writes."""
    actuator = FileActuator(tmp_path / "weights.json")
    for version in range(1, 4):
        await actuator.apply(Applied(make_plan(version, {"a": 1.0}), 0.0))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.json"]


async def test_same_plan_is_not_rewritten(tmp_path: Path) -> None:
    """Applying the version already on disk leaves the file untouched (idempotent)."""
    path = tmp_path / "weights.json"
    actuator = FileActuator(path)
    await actuator.apply(Applied(make_plan(1, {"a": 1.0}), 0.0))
    path.write_text("sentinel")
    await actuator.apply(Applied(make_plan(1, {"a": 1.0}), 5.0))
    assert path.read_text() == "sentinel"
    await actuator.apply(Applied(make_plan(1, {"a": 1.0}, frozen=True), 5.0))
    assert json.loads(path.read_text())["frozen"] is True


async def test_rewrites_a_deleted_file(tmp_path: Path) -> None:
    """If someone deletes weights.json, the next apply writes it again."""
    path = tmp_path / "weights.json"
    actuator = FileActuator(path)
    await actuator.apply(Applied(make_plan(1, {"a": 1.0}), 0.0))
    path.unlink()
    await actuator.apply(Applied(make_plan(1, {"a": 1.0}), 0.0))
    assert json.loads(path.read_text())["version"] == 1


async def test_unwritable_path_raises_actuator_error(tmp_path: Path) -> None:
    """A path whose parent is a file fails with a temporary error naming the path."""
    (tmp_path / "file").write_text("")
    with pytest.raises(TemporaryActuatorError, match=r"cannot write .*file/weights\.json"):
        await FileActuator(tmp_path / "file" / "weights.json").apply(
            Applied(make_plan(1, {"a": 1.0}), 0.0))
