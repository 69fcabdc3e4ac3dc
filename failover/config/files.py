"""Files a config names (its own text, secrets, tokens), read so that no file can hang or
flood the daemon: regular files only, opened without blocking, size-capped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

CONFIG_LIMIT = 8 * 1024 * 1024
"""Bytes of config text: ten thousand clusters take about 2 MiB."""
SECRET_LIMIT = 64 * 1024
"""Bytes of a secret or token file: a key is a line."""


class FileProblem(Exception):
    """Why a file cannot be used, in words for the operator (the path is the caller's)."""


def read_limited(path: Path, limit: int) -> bytes:
    """The content of ``path``, if it is a regular file of at most ``limit`` bytes.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the
    type is checked on the open file, so a swap after a check cannot get through.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise FileProblem("no such file") from exc
    except OSError as exc:
        raise FileProblem(exc.strerror or str(exc)) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise FileProblem(kind)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        msg = f"larger than {limit:,} bytes"
        raise FileProblem(msg)
    return data
