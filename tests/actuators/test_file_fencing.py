"""In distributed mode the file actuator records the leader's epoch in weights.json and never
writes over a higher one; standalone, it writes exactly what v1 wrote."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from failover.actuators.base import Applied, FencedError, TemporaryActuatorError
from failover.actuators.file import FileActuator
from failover.model import Plan
from tests.actuators.test_file import make_plan

PLAN = make_plan(3, {"a": 0.75, "b": 0.25})
V1_BYTES = b"""{
  "version": 3,
  "generated_at": "2026-01-01T00:00:00Z",
  "frozen": false,
  "frozen_reason": null,
  "clusters": {
    "a": {
      "share": 0.75,
      "state": "healthy",
      "reason": "all checks passing"
    },
    "b": {
      "share": 0.25,
      "state": "healthy",
      "reason": "all checks passing"
    }
  }
}
"""
"""What v1 wrote for PLAN at 2026-01-01, byte for byte."""
WALL = 1767225600.0


def applied(epoch: int | None, plan: Plan = PLAN) -> Applied:
    return Applied(plan, WALL, epoch)


def write_epoch(path: Path, epoch: int) -> bytes:
    """A weights.json of another leader, as it would write it; returns its bytes."""
    data = json.dumps({"version": 40, "frozen": False, "clusters": {}, "epoch": epoch}).encode()
    path.write_bytes(data)
    return data


class LockSpy(NamedTuple):
    flock: Callable[[int, int], None]
    """The real flock, for the test's own locking."""
    asked: threading.Event
    """Set when the actuator asks for its lock."""
    holds: threading.Event
    """Set when the actuator has it."""


@pytest.fixture
def lock_spy(monkeypatch: pytest.MonkeyPatch) -> LockSpy:
    """Watches the actuator's flock calls, so a test can act while it waits for the lock."""
    real = fcntl.flock
    asked, holds = threading.Event(), threading.Event()

    def spying(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            asked.set()
        real(fd, operation)
        if operation == fcntl.LOCK_EX:
            holds.set()

    monkeypatch.setattr(fcntl, "flock", spying)
    return LockSpy(real, asked, holds)


def hold_lock(path: Path, flock: Callable[[int, int], None]) -> int:
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    flock(fd, fcntl.LOCK_EX)
    return fd


async def test_standalone_output_is_v1_byte_for_byte(tmp_path: Path) -> None:
    """Without an epoch the file is exactly v1's, and no lock file appears."""
    path = tmp_path / "weights.json"
    await FileActuator(path).apply(applied(None))
    assert path.read_bytes() == V1_BYTES
    assert [p.name for p in tmp_path.iterdir()] == ["weights.json"]


async def test_standalone_writes_over_any_epoch(tmp_path: Path) -> None:
    """Standalone there is no fencing: a file with an epoch is written over, as v1 would."""
    path = tmp_path / "weights.json"
    write_epoch(path, 7)
    await FileActuator(path).apply(applied(None))
    assert path.read_bytes() == V1_BYTES


async def test_epoch_is_written_beside_the_v1_fields(tmp_path: Path) -> None:
    """With an epoch the document is v1's plus a top-level integer ``epoch``."""
    path = tmp_path / "weights.json"
    await FileActuator(path).apply(applied(9))
    doc = json.loads(path.read_bytes())
    assert doc.pop("epoch") == 9
    assert doc == json.loads(V1_BYTES)


async def test_lock_file_is_next_to_the_weights_file(tmp_path: Path) -> None:
    """A fenced write locks ``weights.json.lock`` in the same folder and leaves no temp file."""
    path = tmp_path / "out" / "weights.json"
    await FileActuator(path).apply(applied(1))
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.json", "weights.json.lock"]


async def test_lower_epoch_is_fenced_and_the_file_untouched(tmp_path: Path) -> None:
    """Epoch 5 over a file of epoch 7 raises FencedError naming both; the file stays as it was."""
    path = tmp_path / "weights.json"
    before = write_epoch(path, 7)
    with pytest.raises(FencedError, match=r"weights\.json holds epoch 7 .*; ours is 5"):
        await FileActuator(path).apply(applied(5))
    assert path.read_bytes() == before


@pytest.mark.parametrize(("on_disk", "ours"), [(5, 7), (7, 7)])
async def test_higher_or_equal_epoch_writes(tmp_path: Path, on_disk: int, ours: int) -> None:
    """A file of an older leader, or of this epoch, is written over."""
    path = tmp_path / "weights.json"
    write_epoch(path, on_disk)
    await FileActuator(path).apply(applied(ours))
    doc = json.loads(path.read_bytes())
    assert (doc["epoch"], doc["version"]) == (ours, PLAN.version)


async def test_file_without_epoch_is_written_over_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A standalone (v1) file carries no epoch: it is replaced without a warning."""
    path = tmp_path / "weights.json"
    path.write_bytes(V1_BYTES)
    await FileActuator(path).apply(applied(2))
    assert json.loads(path.read_bytes())["epoch"] == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'{"epoch": "12"}'])
async def test_unparsable_file_is_written_over_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes) -> None:
    """A file we cannot read an epoch from does not block the write; one warning names it."""
    path = tmp_path / "weights.json"
    path.write_bytes(content)
    actuator = FileActuator(path)
    await actuator.apply(applied(2))
    await actuator.apply(applied(2, make_plan(4, {"a": 1.0})))
    doc = json.loads(path.read_bytes())
    assert (doc["version"], doc["epoch"]) == (4, 2)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()


async def test_unreadable_file_is_not_written_over(tmp_path: Path) -> None:
    """A path we cannot read may hold a newer epoch: a temporary error, nothing replaced."""
    path = tmp_path / "weights.json"
    path.mkdir()
    with pytest.raises(TemporaryActuatorError, match=r"cannot read .*weights\.json to check"):
        await FileActuator(path).apply(applied(2))
    assert path.is_dir()


async def test_same_plan_and_epoch_is_not_rewritten(tmp_path: Path) -> None:
    """Our own write still on disk is left alone; the same plan under a new epoch is rewritten."""
    path = tmp_path / "weights.json"
    actuator = FileActuator(path)
    await actuator.apply(applied(5))
    inode = path.stat().st_ino
    await actuator.apply(applied(5))
    assert path.stat().st_ino == inode
    await actuator.apply(applied(6))
    assert json.loads(path.read_bytes())["epoch"] == 6


async def test_a_newer_leaders_write_is_seen_even_for_a_plan_already_written(
        tmp_path: Path) -> None:
    """Having written a plan does not excuse the check: a newer epoch since then fences us."""
    path = tmp_path / "weights.json"
    actuator = FileActuator(path)
    await actuator.apply(applied(5))
    before = write_epoch(path, 8)
    with pytest.raises(FencedError, match="holds epoch 8"):
        await actuator.apply(applied(5))
    assert path.read_bytes() == before


@pytest.mark.parametrize("first", [3, 4])
async def test_concurrent_leaders_end_with_the_newer_epoch(tmp_path: Path, first: int) -> None:
    """Two actuators on one path, epochs 3 and 4, at once: 4 is on disk whoever goes first."""
    for round_ in range(5):
        path = tmp_path / str(round_) / "weights.json"
        epochs = [first, 7 - first]
        results = await asyncio.gather(
            *(FileActuator(path).apply(applied(e, make_plan(e, {"a": 1.0}))) for e in epochs),
            return_exceptions=True)
        outcome = dict(zip(epochs, results, strict=True))
        assert outcome[4] is None
        assert outcome[3] is None or isinstance(outcome[3], FencedError)
        doc = json.loads(path.read_bytes())
        assert (doc["epoch"], doc["version"]) == (4, 4)


async def test_epoch_is_read_under_the_lock(tmp_path: Path, lock_spy: LockSpy) -> None:
    """A newer leader's write made while we wait for the lock is seen, and fences us."""
    flock, asked, _ = lock_spy
    path = tmp_path / "weights.json"
    write_epoch(path, 4)
    held = hold_lock(path, flock)
    try:
        task = asyncio.create_task(FileActuator(path).apply(applied(5)))
        assert await asyncio.to_thread(asked.wait, 10)
        after = write_epoch(path, 6)
    finally:
        os.close(held)
    with pytest.raises(FencedError, match="holds epoch 6"):
        await task
    assert path.read_bytes() == after


async def test_cancelled_apply_writes_nothing_late(tmp_path: Path, lock_spy: LockSpy) -> None:
    """An apply cancelled while waiting for the lock does not write once it gets it."""
    flock, asked, holds = lock_spy
    path = tmp_path / "weights.json"
    held = hold_lock(path, flock)
    try:
        task = asyncio.create_task(FileActuator(path).apply(applied(5)))
        assert await asyncio.to_thread(asked.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        os.close(held)
    assert await asyncio.to_thread(holds.wait, 10)
    # Once we hold the lock again, the abandoned writer has let go of it: done, one way or other.
    os.close(await asyncio.to_thread(hold_lock, path, flock))
    assert not path.exists()
