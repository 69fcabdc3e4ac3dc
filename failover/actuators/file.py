"""Writes CONTRACT's ``weights.json`` atomically: temp file, fsync, rename, fsync the folder."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failover.actuators.base import Applied, TemporaryActuatorError
from failover.model import Plan


def render(plan: Plan, wall_time: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="seconds")
    return {
        "version": plan.version,
        "generated_at": stamp.replace("+00:00", "Z"),
        "frozen": plan.frozen,
        "frozen_reason": plan.frozen_reason,
        "clusters": {
            c.name: {"share": round(c.share, 6), "state": str(c.state), "reason": c.reason}
            for c in plan.clusters
        },
    }


def written_version(path: Path) -> int | None:
    """The plan version of the ``weights.json`` at ``path``; None when there is none to read
    (no file, not ours, unreadable)."""
    try:
        version = json.loads(path.read_bytes()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part; a crash leaves one of the two."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # makes the rename itself durable
    finally:
        os.close(folder)


class FileActuator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: tuple[int, bool] | None = None

    @property
    def name(self) -> str:
        return f"file:{self.path}"

    async def apply(self, applied: Applied) -> None:
        plan = applied.plan
        if self._written == (plan.version, plan.frozen) and self.path.exists():
            return  # idempotent: this plan is already on disk
        data = json.dumps(render(plan, applied.wall_time), indent=2).encode() + b"\n"
        try:
            # fsync can stall for long on a busy disk; the loop must stay responsive meanwhile.
            await asyncio.to_thread(write_atomically, self.path, data)
        except OSError as exc:
            msg = f"cannot write {self.path}: {exc.strerror or exc}"
            raise TemporaryActuatorError(msg) from exc
        self._written = (plan.version, plan.frozen)
