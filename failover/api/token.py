"""The admin bearer token: ``FAILOVER_ADMIN_TOKEN``, else the file ``listen.admin_token_file``.

One reader for ``run``, ``check`` and the break-glass commands, so they agree on what a usable
token file is: a regular file (a FIFO or ``/dev/zero`` is refused, never read), at most
MAX_TOKEN_BYTES, UTF-8, one token of visible characters once surrounding whitespace is
stripped. Every refusal is one TokenError naming the key, the path and why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from failover.config.files import FileProblem, read_limited
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

    try:
        raw = read_limited(path, MAX_TOKEN_BYTES)
    except FileProblem as exc:
        raise refuse(str(exc)) from exc
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
