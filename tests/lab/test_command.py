"""``failover lab`` runs in the foreground; its fault, reset and show talk to it over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from failover.cli import main
from tests.servers import free_port


@pytest.fixture
def control() -> Iterator[str]:
    """A lab of two clusters on free ports, run as a subprocess; yields its control address."""
    address = f"127.0.0.1:{free_port()}"
    with subprocess.Popen(
        [sys.executable, "-m", "failover", "lab", "--clusters", "2", "--dns-base-port", "0",
         "--http-base-port", "0", "--control", address],
        stdout=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(3)]  # two clusters, then the API
            assert lines[0].startswith("lab-1: dns 127.0.0.1:"), lines
            assert lines[2].startswith(f"control API: http://{address}/"), lines
            yield address
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


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


def test_bad_fault_name_is_a_usage_error() -> None:
    """argparse refuses a fault the lab does not know, listing the choices."""
    with pytest.raises(SystemExit) as info:
        main(["lab", "fault", "lab-1", "--dns", "melted"])
    assert info.value.code == 2
