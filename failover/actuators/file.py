"""Writes CONTRACT's ``weights.json`` atomically: temp file, fsync, rename, fsync the folder.

In distributed mode every write also carries the leader's epoch, and is fenced: under a lock,
a file that holds a higher epoch than ours is never written over.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failover.actuators.base import Applied, FencedError, TemporaryActuatorError
from failover.model import Plan

log = logging.getLogger(__name__)


def encode(doc: dict[str, Any]) -> bytes:
    """weights.json's bytes: indented for the operator who reads it."""
    return json.dumps(doc, indent=2).encode() + b"\n"


def render(plan: Plan, wall_time: float, epoch: int | None = None) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="seconds")
    doc: dict[str, Any] = {
        "version": plan.version,
        "generated_at": stamp.replace("+00:00", "Z"),
        "frozen": plan.frozen,
        "frozen_reason": plan.frozen_reason,
        "clusters": {
            c.name: {"share": round(c.share, 6), "state": str(c.state), "reason": c.reason}
            for c in plan.clusters
        },
    }
    if epoch is not None:  # standalone output stays v1's, byte for byte
        doc["epoch"] = epoch
    return doc


def _integer(value: object) -> int | None:
    # JSON's true is a Python int; a flag is no version or epoch.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def written_version(path: Path) -> int | None:
    """The plan version of the ``weights.json`` at ``path``; None when there is none to read
    (no file, not ours, unreadable)."""
    try:
        version = json.loads(path.read_bytes()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return _integer(version)


def lock_path(path: Path) -> Path:
    """The sidecar that fenced writes of ``path`` lock. Not ``path`` itself: each write renames
    a new inode over it, so a lock held on the old one would guard nothing."""
    return path.with_name(path.name + ".lock")


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


@dataclass(frozen=True)
class _OnDisk:
    """What a fenced write needs to know of the file it may replace."""

    version: int | None = None
    frozen: bool | None = None
    epoch: int | None = None
    unreadable: str | None = None
    """Why the file exists but tells nothing to judge it by; None when it does, or is absent."""


def _read_on_disk(path: Path) -> _OnDisk:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return _OnDisk()
    except OSError as exc:
        # Not knowing its epoch is no licence to replace it: it may be a newer leader's.
        msg = f"cannot read {path} to check its epoch: {exc.strerror or exc}"
        raise TemporaryActuatorError(msg) from exc
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return _OnDisk(unreadable=f"not JSON ({exc})")
    if not isinstance(doc, dict):
        return _OnDisk(unreadable=f"a JSON {type(doc).__name__}, not an object")
    frozen = doc.get("frozen")
    found = _OnDisk(_integer(doc.get("version")), frozen if isinstance(frozen, bool) else None,
                    _integer(doc.get("epoch")))
    if "epoch" in doc and found.epoch is None:
        return _OnDisk(found.version, found.frozen,
                       unreadable=f"epoch {doc['epoch']!r} is not an integer")
    return found


def _fenced_write(path: Path, data: bytes, epoch: int, plan: Plan, already: bool,
                  abandoned: threading.Event) -> None:
    """Lock, check the file's epoch, write: one sequence in one thread, so that no other
    writer can come between the check and the rename."""
    lock = lock_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        msg = f"cannot open the lock file {lock}: {exc.strerror or exc}"
        raise TemporaryActuatorError(msg) from exc
    try:
        try:
            # Blocks only while another writer of this path is between its check and rename.
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            msg = f"cannot lock {lock}: {exc.strerror or exc}"
            raise TemporaryActuatorError(msg) from exc
        if abandoned.is_set():
            # The caller gave up (cancelled) while we waited: a newer attempt may already
            # have written a newer plan, which this late one must not undo.
            return
        found = _read_on_disk(path)
        if found.epoch is not None and found.epoch > epoch:
            msg = (f"{path} holds epoch {found.epoch} from a newer leader; ours is {epoch}: "
                   f"plan {plan.version} not written")
            raise FencedError(msg)
        if already and (found.version, found.frozen, found.epoch) == (
                plan.version, plan.frozen, epoch):
            return  # idempotent: our own write of this plan is still there
        if found.unreadable is not None:
            log.warning("%s: %s; writing plan %d over it", path, found.unreadable,
                        plan.version, extra={"path": str(path), "version": plan.version})
        try:
            write_atomically(path, data)
        except OSError as exc:
            msg = f"cannot write {path}: {exc.strerror or exc}"
            raise TemporaryActuatorError(msg) from exc
    finally:
        os.close(fd)  # releases the flock too


class FileActuator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: tuple[int, bool, int | None] | None = None

    @property
    def name(self) -> str:
        return f"file:{self.path}"

    async def apply(self, applied: Applied) -> None:
        if applied.epoch is not None:
            await self._apply_fenced(applied, applied.epoch)
            return
        plan = applied.plan
        written = (plan.version, plan.frozen, None)
        if self._written == written and self.path.exists():
            return  # idempotent: this plan is already on disk
        doc = render(plan, applied.wall_time)
        try:
            # fsync can stall for long on a busy disk; the loop must stay responsive meanwhile.
            # Encoded there too: indented JSON is the pure-Python encoder, tens of ms at fleet
            # scale.
            await asyncio.to_thread(lambda: write_atomically(self.path, encode(doc)))
        except OSError as exc:
            msg = f"cannot write {self.path}: {exc.strerror or exc}"
            raise TemporaryActuatorError(msg) from exc
        self._written = written

    async def _apply_fenced(self, applied: Applied, epoch: int) -> None:
        plan = applied.plan
        written = (plan.version, plan.frozen, epoch)
        doc = render(plan, applied.wall_time, epoch)
        abandoned = threading.Event()
        try:
            # No shortcut before the lock, unlike standalone: only the file can say whether a
            # newer leader has written since our last write.
            unchanged = self._written == written
            await asyncio.to_thread(lambda: _fenced_write(self.path, encode(doc), epoch, plan,
                                                          unchanged, abandoned))
        except FencedError:
            self._written = None
            raise
        except asyncio.CancelledError:
            # The thread cannot be stopped; it sees this before writing, once it has the lock.
            abandoned.set()
            raise
        self._written = written
