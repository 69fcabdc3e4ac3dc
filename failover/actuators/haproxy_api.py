"""A small client for HAProxy's runtime API (the ``stats socket``), on asyncio streams.

Commands go in the CLI's non-interactive mode: one line of commands separated by ``;``, one
connection per line; HAProxy answers each command and then closes. Every answer ends with
an empty line and no answer contains one (management guide, "Unix Sockets commands"), which
is how the answers are told apart. A successful ``set server`` answers nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from failover.actuators.base import PermanentActuatorError, TemporaryActuatorError
from failover.config.actuators import HAPROXY_NAME
from failover.config.addresses import Endpoint, split_hostport

log = logging.getLogger(__name__)

LINE_LIMIT = 4096
"""Bytes per command line. HAProxy refuses a line longer than its buffer (``tune.bufsize``,
16 kB by default, less its reserve); longer batches are split over several connections."""
REPLY_LIMIT = 16 * 1024 * 1024
"""Bytes read at most from one connection; a larger reply is not one we asked for."""
NAME = HAPROXY_NAME
"""What keeps a name from splitting or escaping a command line: the config's rule, checked at
load; checked again before a command is written, as the protocol's own guard."""

FMAINT = 0x01
"""``srv_admin_state`` bit: maintenance forced through the runtime API (``state maint``)."""
FDRAIN = 0x08
"""``srv_admin_state`` bit: drain forced through the runtime API (``state drain``)."""
STATE_FORMAT = "1"
"""The only ``show servers state`` format HAProxy has had (1.6 to 3.x)."""
_REQUIRED = ("be_name", "srv_name", "srv_op_state", "srv_admin_state", "srv_uweight",
             "srv_iweight")


@dataclass(frozen=True, slots=True)
class ServerState:
    """One server's row of ``show servers state``, the fields the actuator reads."""

    backend: str
    name: str
    op_state: int
    """0 stopped, 1 starting, 2 running, 3 stopping (health checks decide)."""
    admin_state: int
    """Bit mask: `FMAINT`, `FDRAIN`, and others HAProxy sets itself (config, tracking, DNS)."""
    weight: int
    """``srv_uweight``: the weight set by config or ``set server ... weight``."""
    initial_weight: int

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & FMAINT)

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & FDRAIN)


class RuntimeApi:
    """HAProxy's runtime API on a unix socket (``socket``) or a TCP ``address``."""

    def __init__(self, *, socket: Path | None = None,
                 address: Endpoint | str | None = None) -> None:
        if socket is not None and address is None:
            self._target: Path | Endpoint = socket
        elif address is not None and socket is None:
            self._target = split_hostport(address) if isinstance(address, str) else address
        else:
            msg = "give exactly one of socket or address"
            raise ValueError(msg)

    @property
    def label(self) -> str:
        """Where the API is, for messages: the socket path or ``host:port``."""
        return str(self._target)

    async def execute(self, commands: Sequence[str]) -> list[list[str]]:
        """Run ``commands`` in order; return each one's answer as a list of lines.

        Raises TemporaryActuatorError when HAProxy cannot be reached or the reply is cut
        short, PermanentActuatorError when the reply is not what the CLI protocol promises.
        """
        answers: list[list[str]] = []
        for batch in _batches(commands):
            answers.extend(await self._run_line(batch))
        return answers

    async def _run_line(self, batch: list[str]) -> list[list[str]]:
        line = "; ".join(batch)
        log.debug("HAProxy runtime API at %s <- %s", self.label, line)
        raw = await self._exchange(line.encode("ascii") + b"\n")
        return split_answers(raw.decode("utf-8", errors="replace"), len(batch), self.label)

    async def _exchange(self, request: bytes) -> bytes:
        try:
            reader, writer = await self._connect()
        except FileNotFoundError as exc:
            msg = (f"HAProxy runtime API: no socket at {self.label} (is HAProxy running with "
                   f"this 'stats socket'?)")
            raise TemporaryActuatorError(msg) from exc
        except PermissionError as exc:
            msg = f"HAProxy runtime API: permission denied opening {self.label}"
            raise PermanentActuatorError(msg) from exc
        except OSError as exc:
            msg = f"HAProxy runtime API at {self.label}: cannot connect: {_describe(exc)}"
            raise TemporaryActuatorError(msg) from exc
        chunks: list[bytes] = []
        total = 0
        try:
            writer.write(request)
            await writer.drain()
            # HAProxy closes the connection once it has answered the line: read to the end.
            while chunk := await reader.read(65536):
                total += len(chunk)
                if total > REPLY_LIMIT:
                    msg = (f"HAProxy runtime API at {self.label}: reply larger than "
                           f"{REPLY_LIMIT} bytes")
                    raise PermanentActuatorError(msg)
                chunks.append(chunk)
        except OSError as exc:
            msg = f"HAProxy runtime API at {self.label}: connection lost: {_describe(exc)}"
            raise TemporaryActuatorError(msg) from exc
        finally:
            writer.close()
            # The reply is complete or has already failed; a reset while closing changes
            # neither, so it is not worth a second error.
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return b"".join(chunks)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self._target, Path):
            return await asyncio.open_unix_connection(str(self._target))
        return await asyncio.open_connection(self._target.host, self._target.port)


def _describe(exc: OSError) -> str:
    # asyncio's own messages ("Connect call failed ...") hide the reason the errno gives.
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _batches(commands: Sequence[str]) -> list[list[str]]:
    """Group commands into lines of at most `LINE_LIMIT` bytes, keeping their order."""
    batches: list[list[str]] = []
    size = 0
    for command in commands:
        if not command or any(c in command for c in ";\\\n\r") or not command.isascii():
            msg = f"not a plain runtime API command: {command!r}"
            raise ValueError(msg)
        if batches and size + len(command) + 2 <= LINE_LIMIT:
            batches[-1].append(command)
            size += len(command) + 2
        else:
            batches.append([command])
            size = len(command)
    return batches


def split_answers(text: str, expected: int, where: str) -> list[list[str]]:
    """Cut a reply into its ``expected`` answers, each ended by an empty line."""
    answers: list[list[str]] = []
    current: list[str] = []
    lines = text.split("\n")
    # After a complete reply the last element is what follows the final newline: nothing.
    complete = lines[-1] == ""
    for line in lines[:-1]:
        if line == "":
            answers.append(current)
            current = []
        else:
            current.append(line)
    if len(answers) < expected:
        got = len(answers)
        msg = (f"HAProxy runtime API at {where}: reply cut short after {got} of {expected} "
               f"answers: {_excerpt(text)}")
        raise TemporaryActuatorError(msg)
    if len(answers) > expected or current or not complete:
        msg = (f"HAProxy runtime API at {where}: unexpected reply, {len(answers)} answers to "
               f"{expected} commands: {_excerpt(text)}")
        raise PermanentActuatorError(msg)
    return answers


def _excerpt(text: str, limit: int = 200) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def parse_servers_state(answer: list[str], backend: str, where: str) -> dict[str, ServerState]:
    """Parse ``show servers state <backend>``: format version, ``#`` header, one row a server.

    Columns are found by the header's names, so versions that add columns still parse.
    Raises a PermanentActuatorError naming what is wrong; an answer that is one line
    of text (``Can't find backend.``) is HAProxy refusing, and says so.
    """
    command = f"show servers state {backend}"
    if not answer:
        msg = f"HAProxy at {where}: empty answer to '{command}'"
        raise PermanentActuatorError(msg)
    version = answer[0].strip()
    if not version.isdigit():
        msg = f"HAProxy at {where} refused '{command}': {' '.join(answer)}"
        raise PermanentActuatorError(msg)
    if version != STATE_FORMAT:
        msg = (f"HAProxy at {where}: '{command}' format version {version}, only "
               f"{STATE_FORMAT} is understood")
        raise PermanentActuatorError(msg)
    if len(answer) < 2 or not answer[1].startswith("#"):
        msg = f"HAProxy at {where}: '{command}' has no '#' header line"
        raise PermanentActuatorError(msg)
    header = answer[1].lstrip("#").split()
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        msg = f"HAProxy at {where}: '{command}' header lacks {', '.join(missing)}"
        raise PermanentActuatorError(msg)
    column = {name: index for index, name in enumerate(header)}
    servers: dict[str, ServerState] = {}
    for number, row in enumerate(answer[2:], start=3):
        if row.startswith("#"):
            continue  # the format allows comment lines anywhere
        fields = row.split()
        if len(fields) != len(header):
            msg = (f"HAProxy at {where}: '{command}' line {number} has {len(fields)} fields, "
                   f"the header {len(header)}: {row!r}")
            raise PermanentActuatorError(msg)
        if fields[column["be_name"]] != backend:
            continue  # asked for one backend; HAProxy would not send others, but be sure
        try:
            state = ServerState(
                backend=backend, name=fields[column["srv_name"]],
                op_state=int(fields[column["srv_op_state"]]),
                admin_state=int(fields[column["srv_admin_state"]]),
                weight=int(fields[column["srv_uweight"]]),
                initial_weight=int(fields[column["srv_iweight"]]))
        except ValueError as exc:
            msg = f"HAProxy at {where}: '{command}' line {number}: a number is not one: {row!r}"
            raise PermanentActuatorError(msg) from exc
        servers[state.name] = state
    return servers
