"""The audit log: one JSON line per admin call, appended to ``state_dir/audit.jsonl``."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def append(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` with a timestamp; on disk (fsync) before the caller answers."""
        line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry},
                          sort_keys=True) + "\n"
        await asyncio.to_thread(self._write, line)

    def _write(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: each line lands whole at the end, whoever else appends.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
