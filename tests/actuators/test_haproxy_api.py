"""The runtime API client splits replies by the CLI's empty-line rule and names what is wrong."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from failover.actuators.base import Applied, PermanentActuatorError, TemporaryActuatorError
from failover.actuators.haproxy import HaproxyActuator
from failover.actuators.haproxy_api import (
    RuntimeApi,
    ServerState,
    _batches,
    parse_servers_state,
    split_answers,
)
from failover.actuators.runner import bounded
from tests.actuators.test_file import make_plan
from tests.haproxy import free_port

HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
          "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
          "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
          "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr "
          "srv_agent_addr srv_agent_port")
ROW = "3 app 1 lab-1 127.0.0.1 2 8 12 1 0 1 0 2 0 0 0 0 - 18101 - 0 0 - - 0"
"""A row as HAProxy 2.6 writes it: lab-1 drained (admin 8), weight 12."""


def test_answers_are_split_on_empty_lines() -> None:
    """Empty answers (a successful set) and multi-line ones come apart in order."""
    text = f"\nNo such server.\n\n1\n{HEADER}\n{ROW}\n\n"
    assert split_answers(text, 3, "sock") == [[], ["No such server."], ["1", HEADER, ROW]]


def test_a_reply_cut_short_is_temporary() -> None:
    """Fewer answers than commands (connection closed early) is worth a retry."""
    with pytest.raises(TemporaryActuatorError, match=r"cut short after 1 of 2 answers"):
        split_answers("\n1\n# be_name", 2, "sock")


def test_extra_answers_are_an_unexpected_reply() -> None:
    """More answers than commands is not the protocol; say so, with the reply."""
    with pytest.raises(PermanentActuatorError, match=r"unexpected reply, 2 answers to 1 commands: "
                                            r"'hello\\n\\nworld\\n\\n'$"):
        split_answers("hello\n\nworld\n\n", 1, "sock")


def test_servers_state_is_parsed_by_header_names() -> None:
    """Weight and admin state come from the columns the header names."""
    servers = parse_servers_state(["1", HEADER, ROW], "app", "sock")
    assert servers == {"lab-1": ServerState("app", "lab-1", 2, 8, 12, 1)}
    assert servers["lab-1"].drain
    assert not servers["lab-1"].maint


def test_added_columns_still_parse() -> None:
    """A later HAProxy that appends columns is read by name, not position."""
    servers = parse_servers_state(["1", HEADER + " srv_new", ROW + " x"], "app", "sock")
    assert servers["lab-1"].weight == 12


@pytest.mark.parametrize(("answer", "problem"), [
    (["Can't find backend."], r"refused 'show servers state app': Can't find backend\."),
    ([], r"empty answer to 'show servers state app'"),
    (["2", HEADER, ROW], r"format version 2, only 1 is understood"),
    (["1", ROW], r"has no '#' header line"),
    (["1", "# be_name srv_name"], r"header lacks srv_op_state, srv_admin_state, srv_uweight"),
    (["1", HEADER, ROW + " extra"], r"line 3 has 26 fields, the header 25"),
    (["1", HEADER, ROW.replace(" 12 ", " twelve ")], r"line 3: a number is not one"),
])
def test_bad_servers_state_names_the_problem(answer: list[str], problem: str) -> None:
    """Each way a state dump can be wrong is a permanent error saying which."""
    with pytest.raises(PermanentActuatorError, match=problem):
        parse_servers_state(answer, "app", "sock")


def test_long_batches_are_split_in_order() -> None:
    """Commands go in lines under the CLI's buffer size, order kept."""
    commands = [f"set server app/s{n} weight 256" for n in range(400)]
    batches = _batches(commands)
    assert len(batches) > 1
    assert [c for batch in batches for c in batch] == commands
    assert all(len("; ".join(batch)) <= 4096 for batch in batches)


def test_separators_cannot_be_smuggled_into_a_command() -> None:
    """A ';' or newline in a command would run something else: refused before sending."""
    with pytest.raises(ValueError, match="not a plain runtime API command"):
        _batches(["set server app/a weight 1; shutdown frontend web"])


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def fake_api(handler: Handler) -> AsyncIterator[Path]:
    """A unix socket answering like ``handler``; yields its path, waits for every handler."""
    folder = Path(tempfile.mkdtemp(prefix="fake-haproxy-"))
    path = folder / "api.sock"
    handlers: list[asyncio.Future[object]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, str(path))
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers)
        shutil.rmtree(folder)


async def test_no_answer_is_cut_at_the_runners_deadline() -> None:
    """A socket that accepts and never answers is cut at the runner's one deadline, no later,
    as a temporary error naming the actuator; the connection is closed, not left behind."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes

    loop = asyncio.get_running_loop()
    async with fake_api(silent) as path:
        actuator = HaproxyActuator(backend="app", servers={"a": "s1"}, socket=path)
        started = loop.time()
        cut = re.escape(f"apply to {actuator.name} timed out after 0.2s")
        with pytest.raises(TemporaryActuatorError, match=cut):
            await bounded(f"apply to {actuator.name}", 0.2,
                          partial(actuator.apply, Applied(make_plan(1, {"a": 1.0}), 0.0)))
        assert 0.2 <= loop.time() - started < 1.0
    # fake_api's exit waited for the silent handler: it saw the client close.


async def test_garbage_reply_is_a_permanent_error() -> None:
    """Something that is not HAProxy answering on the socket is named, not retried."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"hello\n\nworld\n\n")  # two answers to one command

    async with fake_api(garbage) as path:
        actuator = HaproxyActuator(backend="app", servers={"a": "s1"}, socket=path)
        with pytest.raises(PermanentActuatorError,
                           match=r"unexpected reply, 2 answers to 1 commands"):
            await actuator.drift(Applied(make_plan(1, {"a": 1.0}), 0.0))


async def test_missing_socket_is_temporary(tmp_path: Path) -> None:
    """No socket file (HAProxy not started yet, or restarting) is worth a retry."""
    api = RuntimeApi(socket=tmp_path / "none.sock")
    with pytest.raises(TemporaryActuatorError, match=r"no socket at .*none\.sock"):
        await api.execute(["show info"])


async def test_connection_refused_is_temporary() -> None:
    """Nothing listening on the TCP address is worth a retry."""
    api = RuntimeApi(address=f"127.0.0.1:{free_port()}")
    with pytest.raises(TemporaryActuatorError, match=r"cannot connect: Connection refused"):
        await api.execute(["show info"])
