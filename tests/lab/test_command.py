"""``failover lab`` runs in the foreground; its fault, reset, cold, add and show talk to it
over HTTP."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from failover.cli import main
from tests.servers import free_port


@contextlib.contextmanager
def running_lab(*flags: str) -> Iterator[str]:
    """A lab of two clusters on free ports, run as a subprocess; yields its control address
    (port 0, read back from what it prints: no port picked here can be taken meanwhile)."""
    with subprocess.Popen(
        [sys.executable, "-m", "failover", "lab", "--clusters", "2", "--dns-base-port", "0",
         "--http-base-port", "0", "--control", "127.0.0.1:0", *flags],
        stdout=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(3)]  # two clusters, then the API
            assert lines[0].startswith("lab-1: dns 127.0.0.1:"), lines
            found = re.fullmatch(r"control API: http://(127\.0\.0\.1:\d+)/v1/clusters\n",
                                 lines[2])
            assert found, lines
            assert not found[1].endswith(":0")
            yield found[1]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


@pytest.fixture
def control() -> Iterator[str]:
    with running_lab() as address:
        yield address


@pytest.fixture
def capacity_control() -> Iterator[str]:
    with running_lab("--capacity", "20", "--cold-factor", "0.25", "--warm-requests", "100",
                     "--cold-after", "600") as address:
        yield address


def test_fault_show_reset(control: str, capsys: pytest.CaptureFixture[str]) -> None:
    """fault sets what it names, show lists it, reset lifts it."""
    assert main(["lab", "fault", "lab-1", "--dns", "timeout", "--control", control]) == 0
    assert "lab-1: dns=timeout http=ok" in capsys.readouterr().out
    assert main(["lab", "show", "--control", control]) == 0
    out = capsys.readouterr().out
    assert "lab-1: dns=timeout http=ok" in out
    assert "lab-2: dns=ok http=ok" in out
    assert main(["lab", "reset", "lab-1", "--control", control]) == 0
    assert "lab-1: dns=ok http=ok" in capsys.readouterr().out


def test_add_prints_the_new_cluster(control: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab add`` starts lab-3, ``lab add NAME`` one so named, each printed as JSON with
    addresses that serve; show lists them."""
    assert main(["lab", "add", "--control", control]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["name"], doc["answer"]) == ("lab-3", "10.0.3.1")
    health = doc["http"] + "/healthz"
    with urllib.request.urlopen(health, timeout=5) as response:  # noqa: S310 - the lab's URL
        assert (response.status, response.headers["X-Lab-Cluster"]) == (200, "lab-3")
    assert main(["lab", "--control", control, "add", "edge"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["name"], doc["answer"]) == ("edge", "10.0.4.1")
    assert main(["lab", "show", "--control", control]) == 0
    out = capsys.readouterr().out
    assert "lab-3: dns=ok http=ok" in out
    assert "edge: dns=ok http=ok" in out


def test_add_refused_exits_1(control: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A name in use or not allowed is a user error saying why; nothing is added."""
    assert main(["lab", "add", "lab-2", "--control", control]) == 1
    assert "'lab-2' is a name the lab gives itself" in capsys.readouterr().err
    assert main(["lab", "add", "Edge", "--control", control]) == 1
    assert "'Edge' must be 1-63 lower-case letters" in capsys.readouterr().err
    assert main(["lab", "add", "edge", "--control", control]) == 0
    capsys.readouterr()
    assert main(["lab", "add", "edge", "--control", control]) == 1
    captured = capsys.readouterr()
    assert "failover lab: there is already a cluster named 'edge'" in captured.err
    assert captured.out == ""
    assert main(["lab", "show", "--json", "--control", control]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["clusters"]]
    assert names == ["lab-1", "lab-2", "edge"]


def test_unknown_cluster_exits_1(control: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A cluster the lab does not have is a user error naming it."""
    assert main(["lab", "fault", "lab-7", "--http", "500", "--control", control]) == 1
    assert "no cluster named 'lab-7'" in capsys.readouterr().err


def test_no_lab_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """With no lab listening, the client commands exit 3."""
    assert main(["lab", "show", "--control", f"127.0.0.1:{free_port()}"]) == 3
    assert "no lab control API" in capsys.readouterr().err


def test_fault_without_a_change_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``lab fault NAME`` with nothing to change exits 2 before calling anyone."""
    assert main(["lab", "fault", "lab-1"]) == 2
    assert "give --dns, --http or --delay" in capsys.readouterr().err


def test_stale_is_a_dns_fault_the_cli_knows(capsys: pytest.CaptureFixture[str]) -> None:
    """``--dns stale`` gets past argparse to the control API (none here: exit 3, not 2)."""
    assert main(["lab", "fault", "lab-1", "--dns", "stale",
                 "--control", f"127.0.0.1:{free_port()}"]) == 3
    assert "no lab control API" in capsys.readouterr().err


def test_bad_fault_name_is_a_usage_error() -> None:
    """argparse refuses a fault the lab does not know, listing the choices."""
    with pytest.raises(SystemExit) as info:
        main(["lab", "fault", "lab-1", "--dns", "melted"])
    assert info.value.code == 2


def test_cold_makes_a_cluster_cold(capacity_control: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``lab cold NAME`` drops its capacity to the cold factor; show and /metrics say so."""
    assert main(["lab", "cold", "lab-1", "--control", capacity_control]) == 0
    assert "capacity 5.0/20 rps (warmth 0.25)" in capsys.readouterr().out
    assert main(["lab", "show", "--json", "--control", capacity_control]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["warmth"] for c in doc["clusters"]] == [0.25, 1.0]
    with urllib.request.urlopen(f"http://{capacity_control}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'lab_warmth{cluster="lab-1"} 0.25' in text
    assert 'lab_capacity_max_rps{cluster="lab-2"} 20.0' in text


def test_cold_without_capacity_or_cluster_exits_1(
        control: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A lab without --capacity has no warm-up to reset; an unknown name is named."""
    assert main(["lab", "cold", "lab-1", "--control", control]) == 1
    assert "lab-1 has no capacity limit (start the lab with --capacity)" in \
        capsys.readouterr().err
    assert main(["lab", "cold", "lab-9", "--control", control]) == 1
    assert "no cluster named 'lab-9'" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--cold-factor", "1.5"], "--cold-factor must be above 0 and at most 1, got 1.5"),
    (["--warm-requests", "0"], "--warm-requests must be a finite number above 0, got 0"),
    (["--cold-after", "-5"], "--cold-after must be a finite number above 0, got -5"),
    (["--capacity", "0"], "--capacity must be a finite number above 0, got 0"),
    (["--clusters", "0"], "--clusters must be at least 1, got 0"),
])
def test_bad_warm_up_flags_exit_1(flags: list[str], message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Out-of-range flags are refused, naming the flag, before anything starts."""
    assert main(["lab", "--capacity", "10", *flags]) == 1
    assert f"failover lab: {message}" in capsys.readouterr().err
