"""The audit log: one JSON line per admin call, appended to ``state_dir/audit.jsonl``.

One writer task appends the lines in the order they came, as many as are waiting per write
and fsync, so a flood of refused calls costs one fsync per batch, never a thread per line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
"""Lines queued by ``record`` while the disk is behind; beyond it they are counted, and the
count is written as one line, so memory stays bounded and nothing goes unmentioned."""


class AuditLog:
    def __init__(self, path: Path, max_pending: int = MAX_PENDING) -> None:
        self.path = path
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._dropped = 0
        self._batch: asyncio.Future[OSError | None] | None = None
        """Resolved once the lines now pending are on disk (None) or failed (the error)."""
        self._writer: asyncio.Task[None] | None = None

    async def append(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` with a timestamp; on disk (fsync) before the caller answers.

        Raises OSError when the line could not be written."""
        batch = self._enqueue(entry)
        # Shielded: a caller cancelled while waiting must not cancel the batch of the others.
        error = await asyncio.shield(batch)
        if error is not None:
            msg = f"audit log {self.path}: {error}"
            raise OSError(msg) from error

    def record(self, entry: dict[str, Any]) -> None:
        """Queue ``entry`` without waiting for the disk: for callers that cannot await (the
        server's access hook, called after the answer has gone). Past ``max_pending`` lines
        waiting, the entry is only counted."""
        if len(self._pending) >= self._max_pending:
            self._dropped += 1
            return
        self._enqueue(entry)

    async def flush(self) -> None:
        """Return once every line queued so far is written (or has failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    def _enqueue(self, entry: dict[str, Any]) -> asyncio.Future[OSError | None]:
        loop = asyncio.get_running_loop()
        self._pending.append(_line(entry))
        if self._batch is None:
            self._batch = loop.create_future()
        batch = self._batch
        if self._writer is None:
            self._writer = loop.create_task(self._write_pending(), name="audit-writer")
        return batch

    async def _write_pending(self) -> None:
        batch: asyncio.Future[OSError | None] | None = None
        try:
            while self._pending or self._dropped:
                lines, self._pending = self._pending, []
                if self._dropped:
                    lines.append(_line({"result": "not_logged", "count": self._dropped,
                                        "why": f"over {self._max_pending} audit lines were "
                                               "waiting for the disk"}))
                    self._dropped = 0
                batch, self._batch = self._batch, None
                error: OSError | None = None
                try:
                    await asyncio.to_thread(self._write, "".join(lines))
                except OSError as exc:
                    error = exc
                    log.error("cannot append %d lines to the audit log %s: %s",
                              len(lines), self.path, exc)
                if batch is not None and not batch.done():
                    batch.set_result(error)
        finally:
            self._writer = None
            if batch is not None and not batch.done():  # cancelled mid-write
                batch.set_result(OSError("the audit writer was stopped"))

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: each write lands whole at the end, whoever else appends.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            data = text.encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)


def _line(entry: dict[str, Any]) -> str:
    return json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry},
                      sort_keys=True) + "\n"
