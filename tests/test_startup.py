"""What stops the daemon from starting says so in one line and exits 1; what an operator
changed survives the stop that follows."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from failover.config import load
from failover.daemon import Daemon, StartupError
from failover.daemon import state as state_module
from failover.daemon.overrides import Freeze, Overrides
from failover.daemon.state import StateKeeper
from failover.daemon.supervisor import Heartbeats
from failover.metrics import Metrics
from tests.servers import free_port

WITHIN = 20.0


def config(tmp_path: Path, *, status: str = "127.0.0.1:0", extra: str = "") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(f"""\
        listen: {{status: "{status}", admin: "127.0.0.1:0"}}
        state_dir: state
        clusters:
          - {{name: a, weight: 1, checks: [{{tcp: "127.0.0.1:1"}}]}}
        """) + extra)
    return path


def run(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "failover", "run", "-c", str(path), "--log-level", "error"],
        capture_output=True, text=True, timeout=WITHIN, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def test_a_status_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = run(config(tmp_path, status=f"127.0.0.1:{port}"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"{tmp_path / 'c.yaml'}: status listener: cannot listen on 127.0.0.1:{port}: "
        "Address already in use")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_state_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o500)
    done = run(config(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "is not writable" in done.stderr.strip().splitlines()[-1]


def test_a_state_dir_that_is_a_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """(As root, a file where the folder should be is what cannot be written.)"""
    (tmp_path / "state").write_text("")
    done = run(config(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"{tmp_path / 'c.yaml'}:2: state_dir: {tmp_path / 'state'}: "
                    "it is not a folder"), last


def test_a_missing_token_file_names_the_key(tmp_path: Path) -> None:
    path = config(tmp_path)
    path.write_text(path.read_text().replace(
        'admin: "127.0.0.1:0"}', 'admin: "127.0.0.1:0", admin_token_file: nowhere}'))
    done = run(path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "listen.admin_token_file" in last
    assert str(tmp_path / "nowhere") in last


async def test_a_freeze_survives_the_stop_that_follows(tmp_path: Path) -> None:
    """Freeze, then SIGTERM before any tick: the state on disk holds the freeze (it came
    back unfrozen 4 times of 4)."""
    daemon = Daemon(load(config(tmp_path, extra="policy: {tick: 60}\n")), None)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.status.ready.wait(), WITHIN)
    daemon.surface.freeze("incident 9")
    daemon.stop()
    await asyncio.wait_for(task, WITHIN)
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["overrides"]["freeze"]["reason"] == "incident 9"

    again = Daemon(load(tmp_path / "c.yaml"), None)
    task = asyncio.create_task(again.run())
    await asyncio.wait_for(again.status.ready.wait(), WITHIN)
    assert again.overrides.freeze is not None
    assert again.overrides.freeze.reason == "incident 9"
    again.stop()
    await asyncio.wait_for(task, WITHIN)


async def test_startup_error_in_process_is_a_startup_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        daemon = Daemon(load(config(tmp_path, status=f"127.0.0.1:{port}")), None)
        with pytest.raises(StartupError, match="status listener: cannot listen"):
            await asyncio.wait_for(daemon.run(), WITHIN)


def test_heartbeats_name_the_loop_that_went_silent() -> None:
    now = [100.0]
    beats = Heartbeats(lambda: now[0])
    beats.expect("prober", 3.0)
    beats.expect("planner", 11.0)
    assert beats.stalled() == []
    now[0] = 105.0
    beats.beat("planner")
    assert beats.stalled() == ["prober silent for 5.0s (bound 3s)"]
    beats.beat("prober")
    assert beats.stalled() == []


async def test_a_state_that_cannot_be_saved_is_said_once_and_fails_liveness(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """It logged an ERROR every second while /healthz stayed 200."""
    (tmp_path / "state").write_text("")  # a file where the folder should be
    metrics = Metrics(CollectorRegistry())
    keeper = StateKeeper(tmp_path / "state" / "state.json", metrics)
    overrides = Overrides()
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            overrides.freeze = Freeze(f"try {n}", float(n))
            await keeper.save(None, overrides)
    assert keeper.failing is not None
    assert keeper.failing.startswith(f"cannot save state to {tmp_path / 'state'}")
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert metrics.registry.get_sample_value("failover_errors_total",
                                             {"where": "persist"}) == 3
    (tmp_path / "state").unlink()
    await keeper.save(None, overrides)
    assert keeper.failing is None


async def test_a_save_reads_its_own_write_when_another_takes_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save that starts between another's write ending and that one resuming takes the
    writer's place; the first must still read its own write's outcome (it read the new
    one's, unfinished, and an operator got a 500 under load)."""
    writing = [threading.Event(), threading.Event()]
    gates = [threading.Event(), threading.Event()]
    write = state_module._write

    def held(path: Path, doc: dict[str, object]) -> None:
        which = 0 if doc["overrides"] == {"drains": {}, "freeze": None} else 1
        writing[which].set()
        gates[which].wait(10)
        write(path, doc)

    real_wait = asyncio.wait
    waited, resume = asyncio.Event(), asyncio.Event()
    calls = 0

    async def late_wait(*args: Any, **kwargs: Any) -> Any:
        # The first saver, once its write is done, is held where a loaded loop would keep
        # it: after its wait returned, before it reads the outcome.
        nonlocal calls
        calls += 1
        result = await real_wait(*args, **kwargs)
        if calls == 1:
            waited.set()
            await resume.wait()
        return result

    monkeypatch.setattr(state_module, "_write", held)
    monkeypatch.setattr(state_module.asyncio, "wait", late_wait)
    path = tmp_path / "state.json"
    keeper = StateKeeper(path, Metrics(CollectorRegistry()), wait=10)
    newer = Overrides()
    newer.freeze = Freeze("newer", 1.0)
    first = asyncio.create_task(keeper.save(None, Overrides()))
    await asyncio.to_thread(writing[0].wait, 10)
    gates[0].set()
    await waited.wait()  # the first write is done; its saver has not read the outcome yet
    second = asyncio.create_task(keeper.save(None, newer))
    await asyncio.to_thread(writing[1].wait, 10)  # the second save now holds _saving
    resume.set()
    await asyncio.wait({first}, timeout=10)
    gates[1].set()
    await asyncio.gather(first, second)
    assert keeper.failing is None
    assert json.loads(path.read_text())["overrides"]["freeze"]["reason"] == "newer"


BAD_FOR_RUN = {
    "capacity without demand": ("clusters:\n  - {name: a, weight: 1, capacity_rps: 100, "
                                "checks: [{tcp: '127.0.0.1:1'}]}\n"),
    "token file missing": ("listen: {admin_token_file: nowhere}\n"
                           "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"),
    "token file empty": ("listen: {admin_token_file: empty}\n"
                         "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"),
    "state_dir a file": ("state_dir: afile\n"
                         "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"),
    "status on the admin port": ("listen: {status: '127.0.0.1:9', admin: '127.0.0.1:9'}\n"
                                 "clusters: [{name: a, weight: 1, checks: "
                                 "[{tcp: '127.0.0.1:1'}]}]\n"),
    "one target twice": ("clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}, "
                         "{tcp: '127.0.0.1:1'}]}]\n"),
    "tsig secret a fifo": ("clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"
                           "actuators: [{type: dns, server: '127.0.0.1:5353', zone: z., "
                           "name: a.z., tsig: {name: k, secret_file: fifo}, "
                           "addresses: {a: [192.0.2.1]}}]\n"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOR_RUN))
def test_check_refuses_what_run_refuses(tmp_path: Path, case: str) -> None:
    """Fed the same config, `check` and `run` both exit 1 naming the same problem."""
    (tmp_path / "empty").write_text("")
    (tmp_path / "afile").write_text("")
    os.mkfifo(tmp_path / "fifo")
    path = tmp_path / "c.yaml"
    path.write_text(BAD_FOR_RUN[case])
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_ADMIN_TOKEN"}
    checked = subprocess.run([sys.executable, "-m", "failover", "check", "-c", str(path)],
                             capture_output=True, text=True, timeout=WITHIN, check=False, env=env)
    ran = subprocess.run([sys.executable, "-m", "failover", "run", "-c", str(path)],
                         capture_output=True, text=True, timeout=WITHIN, check=False, env=env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert ran.returncode == 1, ran.stderr
    why = checked.stderr.strip().splitlines()[-1]
    assert why.startswith(f"{path}:")
    assert why in ran.stderr
    assert "Traceback" not in ran.stderr


async def test_an_operator_change_is_on_disk_before_it_is_answered(tmp_path: Path) -> None:
    """The admin routes answer a drain or freeze after `persist`: on disk then, not at the
    next tick (here a minute away)."""
    daemon = Daemon(load(config(tmp_path, extra="policy: {tick: 60}\n")), None)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.status.ready.wait(), WITHIN)
    daemon.surface.drain("a", "maintenance", None)
    assert await daemon.surface.persist() is True
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["overrides"]["drains"]["a"]["reason"] == "maintenance"
    daemon.stop()
    await asyncio.wait_for(task, WITHIN)


def test_a_reload_that_would_leave_only_drained_clusters_is_refused(tmp_path: Path) -> None:
    """b drained, then a reload setting a's weight to 0: nothing could take traffic, and the
    lone drained cluster showed `drained` at share 1.0. Refused, as the admin API refuses
    the drain that would do the same."""
    path = tmp_path / "c.yaml"
    two = ("clusters:\n  - {name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}\n"
           "  - {name: b, weight: 1, checks: [{tcp: '127.0.0.1:2'}]}\n")
    path.write_text(two)
    daemon = Daemon(load(path), path, CollectorRegistry())
    daemon.surface.drain("b", "maintenance", None)
    path.write_text(two.replace("name: a, weight: 1", "name: a, weight: 0"))
    assert daemon.reload() is False
    assert [c.weight for c in daemon.config.clusters] == [1, 1]
    error = daemon.extra_status()["config"]["last_reload"]["error"]
    assert error == (f"{path}: every cluster of weight above 0 in it is drained: nothing "
                     "could take traffic; undrain one first")
