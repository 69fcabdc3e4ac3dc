"""The command line: check prints budgets, errors are located, exit codes follow CONTRACT."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from failover.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_check_prints_rates_per_target_and_total(capsys: pytest.CaptureFixture[str]) -> None:
    """check on the example config exits 0 and prints each target's worst case and the total."""
    assert main(["check", "-c", str(ROOT / "config" / "example.yaml")]) == 0
    out = capsys.readouterr().out
    assert "127.0.0.1:5301     1.25/s  (cap 2/s)" in out
    assert "127.0.0.1:8101     1.25/s  (cap 2/s)" in out  # http and tcp to one address add up
    assert "total              6.88/s  (cap 500/s)" in out  # vantage probes included


def test_check_bad_config_exits_1_with_location(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad config exits 1 and prints file:line: key.path: message on stderr."""
    path = tmp_path / "bad.yaml"
    path.write_text("clusters:\n  - name: a\n    weight: -2\n    checks: [{tcp: '127.0.0.1:1'}]\n")
    assert main(["check", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: clusters[0].weight: Input should be greater than or equal to 0" in err


def test_status_unreachable_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """status against a port nobody listens on exits 3."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["status", "--url", f"http://127.0.0.1:{port}"]) == 3
    assert "daemon unreachable" in capsys.readouterr().err


def test_usage_error_exits_2() -> None:
    """An unknown command is a usage error."""
    with pytest.raises(SystemExit) as info:
        main(["explode"])
    assert info.value.code == 2
