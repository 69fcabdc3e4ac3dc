"""An aiohttp server run as an ordinary task: it sets ``ready`` once bound, cleans up on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest

from failover.api.tls import ServingTls
from failover.config.addresses import Endpoint, UnixSocket, split_hostport

log = logging.getLogger(__name__)

AccessHook = Callable[[BaseRequest, web.StreamResponse], None]

ACCESS_HOOK: web.AppKey[AccessHook] = web.AppKey("access_hook")
"""Set on an app, called once for every answered request, where aiohttp writes its access
log: after the answer, for requests the app handled and for those aiohttp refused before any
handler or middleware ran (malformed request lines or headers, over-long lines). It must not
block: it runs on the loop, synchronously."""

LINGER = 2.0
"""Seconds aiohttp keeps reading (and discarding) a body nobody read, after the answer,
before closing (aiohttp's default is 10). Our bodies are at most a few KiB, so 2s covers any
honest client; longer only lets refused clients hold connections and feed the loop data."""


SHUTDOWN_WAIT = 2.0
"""Seconds requests in flight get to finish when the daemon stops (aiohttp's default is 60):
a stop must be bounded, and no answer of ours takes long."""


REJECT_LOG_EVERY = 60.0
"""Seconds between two log lines about requests a listener could not parse: one client
sending garbage must not flood the log (nor the loop, formatting a traceback each)."""


class _RejectsOncePerWindow(logging.Filter):
    """On a listener's aiohttp server logger: a request aiohttp could not parse (its
    `HttpProcessingError`, a client's fault) is counted, and logged once per window without
    a traceback, with how many came since; anything else passes as it is."""

    def __init__(self, listener: str, rejected: Callable[[], None],
                 clock: Callable[[], float]) -> None:
        super().__init__()
        self._listener = listener
        self._rejected = rejected
        self._clock = clock
        self._next = -math.inf
        self._unlogged = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return log.isEnabledFor(record.levelno)
        self._rejected()
        if record.levelno < logging.WARNING:
            # aiohttp's own choice for bytes that are not HTTP at all (a TLS hello, a port
            # scan): counted, and shown only to someone who asked for debug logs.
            return log.isEnabledFor(record.levelno)
        now = self._clock()
        if now < self._next:
            self._unlogged += 1
            return False
        since = f"; {self._unlogged} more since the last line" if self._unlogged else ""
        record.msg = "%s listener refused a request it could not parse from %s: %s%s"
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.args = (self._listener, remote,
                       _first_line(error.message) or type(error).__name__, since)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        self._next, self._unlogged = now + REJECT_LOG_EVERY, 0
        return True


def _first_line(text: str) -> str:
    # aiohttp's messages echo the offending bytes on further lines; a log line stays one line.
    return text.strip().split("\n", 1)[0][:200]


def _access_logger(hook: AccessHook) -> type[AbstractAccessLogger]:
    class HookAccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
            try:
                hook(request, response)
            except Exception:
                # aiohttp would log and drop the connection's next requests; a hook's bug
                # must cost only its own line.
                log.exception("access hook failed")

    return HookAccessLogger


class Listener:
    def __init__(self, name: str, app: web.Application, address: Endpoint | UnixSocket | str,
                 rejected: Callable[[], None] = lambda: None,
                 tls: ServingTls | None = None, socket_mode: int = 0o600,
                 socket_group: str | None = None) -> None:
        """``rejected`` is called for each request aiohttp could not parse (a metric); with
        ``tls``, a TCP listener speaks HTTPS only. A Unix socket is made with
        ``socket_mode`` and ``socket_group``: its file's mode is its access control."""
        self.name = name
        self.tls = tls
        self._socket_mode = socket_mode
        self._socket_group = socket_group
        self._rejects = _RejectsOncePerWindow(name, rejected, time.monotonic)
        # Its own server logger, so the filter knows the listener, at DEBUG so every record
        # reaches the filter (and is counted) whatever the log level; the filter then lets
        # through what this module's level would.
        self._server_log = logging.getLogger(f"{__name__}.{name}")
        self._server_log.setLevel(logging.DEBUG)
        self.app = app
        self.address: Endpoint | UnixSocket = split_hostport(address, listen=True) \
            if isinstance(address, str) else address
        self.ready = asyncio.Event()
        self.bound: list[str] = []
        """Addresses actually bound (a port 0 in the config becomes the real port)."""

    async def serve(self) -> None:
        hook = self.app.get(ACCESS_HOOK)
        if hook is None:
            runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                   lingering_time=LINGER, shutdown_timeout=SHUTDOWN_WAIT,
                                   logger=self._server_log)
        else:
            runner = web.AppRunner(self.app, handle_signals=False, lingering_time=LINGER,
                                   shutdown_timeout=SHUTDOWN_WAIT, access_log=log,
                                   access_log_class=_access_logger(hook),
                                   logger=self._server_log)
        self._server_log.addFilter(self._rejects)
        await runner.setup()
        made: UnixSocket | None = None
        try:
            if isinstance(self.address, UnixSocket):
                made = self.address
                site: web.BaseSite = web.SockSite(runner, bind_unix(
                    made.path, self._socket_mode, self._socket_group))
                await site.start()
                self.bound = [str(made)]
                log.info("%s listener on %s (mode %04o%s)", self.name, made, self._socket_mode,
                         f", group {self._socket_group}" if self._socket_group else "")
            else:
                host, port = self.address
                site = web.TCPSite(runner, host, port, reuse_address=True,
                                   ssl_context=None if self.tls is None else self.tls.front)
                await site.start()
                self.bound = [f"{a[0]}:{a[1]}" for a in runner.addresses]
                log.info("%s listener on %s%s", self.name, ", ".join(self.bound),
                         "" if self.tls is None else " (HTTPS only)")
            self.ready.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            await runner.cleanup()
            self._server_log.removeFilter(self._rejects)
            if made is not None:
                with contextlib.suppress(FileNotFoundError):
                    made.path.unlink()


def bind_unix(path: Path, mode: int, group: str | None) -> socket.socket:
    """A Unix socket bound at ``path`` with ``mode`` (and ``group``) from its first instant:
    made under a umask that lets nobody in, then opened up to ``mode``, so no one gets in
    through a wider mode in between. A socket file left by a daemon that died is replaced;
    one a live daemon listens on, or any other file, is not: OSError says why."""
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()  # nobody listens: a leftover
        else:
            msg = f"unix:{path}: another process listens on it"
            raise OSError(errno.EADDRINUSE, msg)
        finally:
            probe.close()
    elif path.exists() or path.is_symlink():
        msg = f"unix:{path}: a file that is not a socket is there; not replaced"
        raise OSError(errno.EEXIST, msg)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous = os.umask(0o777)
        try:
            sock.bind(str(path))
        finally:
            os.umask(previous)
        if group is not None:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        os.chmod(path, mode)
    except BaseException:
        sock.close()
        raise
    return sock
