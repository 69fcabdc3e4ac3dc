"""The admin bearer tokens: ``FAILOVER_ADMIN_TOKEN``, else the file ``listen.admin_token_file``.

One reader for ``run``, ``check`` and the break-glass commands, so they agree on what a usable
token file is: a regular file (a FIFO or ``/dev/zero`` is refused, never read), at most
MAX_TOKEN_BYTES, UTF-8, one token of visible characters per line (several for rotation;
blank lines and ``#`` comments skipped). Every refusal is one TokenError naming the key, the
path and why, never the token. The daemon re-reads the file when it changes (`Tokens`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from failover.config.files import FileProblem, read_limited
from failover.config.models import Listen

log = logging.getLogger(__name__)

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
    """The token a client sends: the environment's, else the file's first; None when neither
    is given. A configured file that gives no token raises TokenError."""
    tokens = admin_tokens(config, environ)
    return None if tokens is None else tokens.first


def admin_tokens(config: HasListen, environ: Mapping[str, str] = os.environ) -> Tokens | None:
    """The tokens the daemon accepts: the environment's alone when it is set (the file is
    not even read), else the file's; None when neither is given.

    A daemon whose operators believe they have a break-glass API must not start without one,
    so a configured file that gives no token raises TokenError rather than returning None.
    """
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        _check_visible(token, TOKEN_ENV)
        return Tokens((token,))
    path = config.listen.admin_token_file
    return None if path is None else Tokens(read_tokens(path), path)


def read_token_file(path: Path, key: str = TOKEN_KEY) -> str:
    """The first token in ``path``: the one a client presents."""
    return read_tokens(path, key)[0]


def read_tokens(path: Path, key: str = TOKEN_KEY) -> tuple[str, ...]:
    """The tokens held in ``path``; TokenError saying ``key: path: why`` when there is none."""

    def refuse(why: str) -> TokenError:
        return TokenError(f"{key}: {path}: {why}")

    try:
        raw = read_limited(path, MAX_TOKEN_BYTES)
    except FileProblem as exc:
        raise refuse(str(exc)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse("not UTF-8 text") from exc
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if token and not token.startswith("#"):
            _check_visible(token, f"{key}: {path}: line {number}")
            tokens.append(token)
    if not tokens:
        raise refuse("empty (no token in it)")
    return tuple(tokens)


def fingerprint(token: str) -> str:
    """What the audit log and the logs say of a token: enough to tell which one of a few
    was used, nothing that helps to guess it."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


class Tokens:
    """The tokens accepted now. `refresh` re-reads the file when it changed: a new line
    works, a removed one stops working; a file that gives no token keeps the tokens read
    before (a half-written file must not lock the operators out)."""

    def __init__(self, tokens: tuple[str, ...], path: Path | None = None,
                 failed: Callable[[], None] = lambda: None) -> None:
        """``failed`` is called when a re-read finds no usable token (a metric)."""
        self.path = path
        self.failed = failed
        self._stamp = None if path is None else _stamp(path)
        self._set(tokens)

    def _set(self, tokens: tuple[str, ...]) -> None:
        self.first = tokens[0]
        # One tuple, swapped whole: a refresh on a worker thread never shows a half.
        self._accepted = tuple((token.encode(), fingerprint(token)) for token in tokens)

    @property
    def fingerprints(self) -> list[str]:
        return [print_ for _, print_ in self._accepted]

    def match(self, credential: bytes) -> str | None:
        """The fingerprint of the token ``credential`` is, or None. Every token is compared,
        each in constant time, so the time taken says nothing of which one came close."""
        found = None
        for token, print_ in self._accepted:
            if hmac.compare_digest(credential, token):
                found = print_
        return found

    def refresh(self) -> bool:
        """Blocking file I/O: call it off the loop. True when the tokens changed."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            tokens = read_tokens(self.path)
        except TokenError as exc:
            self.failed()
            log.error("%s; the admin tokens read before stay in force", exc)
            return False
        before = set(self.fingerprints)
        self._set(tokens)
        log.warning("admin tokens re-read from %s: %d accepted (%s added, %s removed)",
                    self.path, len(tokens),
                    ", ".join(sorted(set(self.fingerprints) - before)) or "none",
                    ", ".join(sorted(before - set(self.fingerprints))) or "none")
        return True

    async def watch(self, every: float) -> None:
        """Re-read the file whenever it changes, checking every ``every`` seconds."""
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(self.refresh)


def _check_visible(token: str, where: str) -> None:
    # An Authorization header cannot carry a line break, and the scheme is split off at the
    # first space: a token holding either could never be presented, so no call would pass.
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        msg = (f"{where}: whitespace or control characters inside the token (a bearer "
               "token is one word of visible characters)")
        raise TokenError(msg)
