"""Files a config names (its own text, secrets, tokens), read so that no file can hang or
flood the daemon: regular files only, opened without blocking, size-capped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

CONFIG_LIMIT = 8 * 1024 * 1024
"""Bytes of config text: ten thousand clusters take about 2 MiB."""
SECRET_LIMIT = 64 * 1024
"""Bytes of a secret file: a key is a line."""


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
    except PermissionError as exc:
        raise FileProblem("unreadable: permission denied") from exc
    except OSError as exc:
        msg = f"unreadable: {exc.strerror or exc}"
        raise FileProblem(msg) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            msg = f"not a regular file ({_kind(info.st_mode)})"
            raise FileProblem(msg)
        if info.st_size > limit:
            msg = f"too large ({info.st_size} bytes; at most {limit:,})"
            raise FileProblem(msg)
        data = os.read(fd, limit + 1)
    except OSError as exc:
        msg = f"unreadable: {exc.strerror or exc}"
        raise FileProblem(msg) from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew between fstat and read
        msg = f"too large (over {limit:,} bytes)"
        raise FileProblem(msg)
    return data


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")
