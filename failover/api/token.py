"""The admin bearer token: ``FAILOVER_ADMIN_TOKEN``, else the file ``listen.admin_token_file``.

One reader for ``run``, ``check`` and the break-glass commands, so they agree on what a usable
token file is: a regular file (a FIFO or ``/dev/zero`` is refused, never read), at most
MAX_TOKEN_BYTES, UTF-8, one token of visible characters once surrounding whitespace is
stripped. Every refusal is one TokenError naming the key, the path and why.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from failover.config.models import Listen

TOKEN_ENV = "FAILOVER_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
TOKEN_KEY = "listen.admin_token_file"  # noqa: S105 - a config key, not a secret
MAX_TOKEN_BYTES = 4096
"""Bytes: a bearer token is a line, not a file; anything longer is a wrong path."""


class TokenError(ValueError):
    """No usable token where one is configured. A ValueError, as the token errors of
    ``admin_token`` were, so callers that reported those report this one the same way."""


class HasListen(Protocol):
    """A Config, or just its ``listen`` section read by the break-glass commands."""

    @property
    def listen(self) -> Listen: ...


def admin_token(config: HasListen, environ: Mapping[str, str] = os.environ) -> str | None:
    """The environment's token first, else the token file's; None when neither is given.

    A daemon whose operators believe they have a break-glass API must not start without one,
    so a configured file that gives no token raises TokenError rather than returning None.
    """
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        _check_visible(token, TOKEN_ENV)
        return token
    path = config.listen.admin_token_file
    return None if path is None else read_token_file(path)


def read_token_file(path: Path, key: str = TOKEN_KEY) -> str:
    """The token held in ``path``; TokenError saying ``key: path: why`` when there is none."""

    def refuse(why: str) -> TokenError:
        return TokenError(f"{key}: {path}: {why}")

    why: str
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise refuse("no such file") from exc
    except PermissionError as exc:
        raise refuse("unreadable: permission denied") from exc
    except OSError as exc:
        why = f"unreadable: {exc.strerror or exc}"
        raise refuse(why) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            why = f"not a regular file ({_kind(info.st_mode)})"
            raise refuse(why)
        if info.st_size > MAX_TOKEN_BYTES:
            why = f"too large ({info.st_size} bytes; a token is at most {MAX_TOKEN_BYTES})"
            raise refuse(why)
        raw = os.read(fd, MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        why = f"unreadable: {exc.strerror or exc}"
        raise refuse(why) from exc
    finally:
        os.close(fd)
    if len(raw) > MAX_TOKEN_BYTES:  # grew between fstat and read
        why = f"too large (over {MAX_TOKEN_BYTES} bytes)"
        raise refuse(why)
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise refuse("not UTF-8 text") from exc
    if not token:
        raise refuse("empty")
    _check_visible(token, f"{key}: {path}")
    return token


def _check_visible(token: str, where: str) -> None:
    # An Authorization header cannot carry a line break, and the scheme is split off at the
    # first space: a token holding either could never be presented, so no call would pass.
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        msg = (f"{where}: whitespace or control characters inside the token (a bearer "
               "token is one word of visible characters)")
        raise TokenError(msg)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")
