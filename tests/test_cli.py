"""The command line: check prints budgets, errors are located, exit codes follow CONTRACT."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from failover.cli import main
from tests.certs import Authority

ROOT = Path(__file__).resolve().parents[1]


def test_check_prints_rates_per_target_and_total(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """check on the example config exits 0 and prints each target's worst case and the total."""
    # The example's token file is made by whoever runs it; the environment stands in here.
    monkeypatch.setenv("FAILOVER_ADMIN_TOKEN", "t")
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


def _config(tmp_path: Path, listen: str = "") -> Path:
    """A small valid config under ``tmp_path``; ``listen`` is the listen section's body."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"listen:\n  status: 127.0.0.1:0\n  admin: 127.0.0.1:0\n{listen}"
        f"state_dir: {tmp_path / 'var'}\n"
        "clusters:\n  - name: a\n    weight: 1\n    checks: [{tcp: '127.0.0.1:1'}]\n"
        f"actuators:\n  - type: file\n    path: {tmp_path / 'weights.json'}\n")
    return path


@pytest.mark.parametrize(("make", "why"), [
    (lambda d: d / "absent", "no such file"),
    (lambda d: (d / "empty").write_text("\n") and d / "empty", "empty"),
    (lambda d: d, "not a regular file (a directory)"),
])
def test_check_refuses_a_token_file_that_gives_no_token(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        make: object, why: str) -> None:
    """check exits 1 on a missing, empty or directory token file, located at its key."""
    monkeypatch.delenv("FAILOVER_ADMIN_TOKEN", raising=False)
    token = make(tmp_path)  # type: ignore[operator]
    path = _config(tmp_path, f"  admin_token_file: {token}\n")
    assert main(["check", "-c", str(path)]) == 1
    assert f"{path}:4: listen.admin_token_file: {token}: {why}" in capsys.readouterr().err


def test_run_with_a_missing_token_file_names_key_and_path(tmp_path: Path) -> None:
    """run refuses to start on a missing token file, saying which key, which path and why."""
    # A process of its own: `run` owns its event loop from start to exit.
    token = tmp_path / "absent"
    path = _config(tmp_path, f"  admin_token_file: {token}\n")
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_ADMIN_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "failover", "run", "-c", str(path)],
                          capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 1
    assert f"listen.admin_token_file: {token}: no such file" in done.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every call 200 with a minimal status document; records what it was sent."""

    seen: ClassVar[list[tuple[str, str, str, bytes]]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        reply = json.dumps({"version": 3, "frozen": False, "clusters": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def daemon() -> Iterator[tuple[str, list[tuple[str, str, str, bytes]]]]:
    """A stand-in for both listeners on 127.0.0.1:0: its address, and the calls it got."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


BROKEN_ELSEWHERE = """\
probing: {intervall: 2s}
clusters:
  - name: a
    weight: -2
actuators: [{type: nope}]
"""


@pytest.mark.parametrize(("argv", "path", "body"), [
    (["freeze", "--reason", "incident"], "/v1/freeze", {"reason": "incident"}),
    (["unfreeze"], "/v1/unfreeze", {}),
    (["drain", "a", "--reason", "bad deploy"], "/v1/clusters/a/drain", {"reason": "bad deploy"}),
    (["undrain", "a"], "/v1/clusters/a/undrain", {}),
    (["reload"], "/v1/reload", {}),
])
def test_break_glass_commands_need_only_the_listen_section(
        tmp_path: Path, daemon: tuple[str, list[tuple[str, str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch, argv: list[str], path: str,
        body: dict[str, str]) -> None:
    """With -c, admin commands read listen.admin and listen.admin_token_file alone: errors
    anywhere else in the file do not stop them reaching the daemon with the token."""
    monkeypatch.delenv("FAILOVER_ADMIN_TOKEN", raising=False)
    address, seen = daemon
    (tmp_path / "token").write_text("s3cret\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"listen:\n  admin: {address}\n  admin_token_file: token\n"
                      + BROKEN_ELSEWHERE)
    assert main([*argv, "-c", str(config)]) == 0
    assert [(m, p, a, json.loads(b)) for m, p, a, b in seen] == [
        ("POST", path, "Bearer s3cret", body)]


def test_break_glass_token_from_the_environment(
        tmp_path: Path, daemon: tuple[str, list[tuple[str, str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token file in listen, FAILOVER_ADMIN_TOKEN is the token."""
    monkeypatch.setenv("FAILOVER_ADMIN_TOKEN", "from-env")
    address, seen = daemon
    config = tmp_path / "c.yaml"
    config.write_text(f"listen: {{admin: '{address}'}}\n" + BROKEN_ELSEWHERE)
    assert main(["unfreeze", "-c", str(config)]) == 0
    assert seen[0][2] == "Bearer from-env"


def test_status_with_config_reads_only_listen_status(
        tmp_path: Path, daemon: tuple[str, list[tuple[str, str, str, bytes]]],
        capsys: pytest.CaptureFixture[str]) -> None:
    """status -c takes listen.status and nothing else from the file."""
    address, seen = daemon
    config = tmp_path / "c.yaml"
    config.write_text(f"listen: {{status: '{address}'}}\n" + BROKEN_ELSEWHERE)
    assert main(["status", "-c", str(config)]) == 0
    assert seen[0][:2] == ("GET", "/v1/status")
    assert "plan version 3" in capsys.readouterr().out


@pytest.mark.parametrize(("listen", "message"), [
    ("  admin: nowhere\n", "c.yaml:2: listen.admin: expected host:port"),
    ("  admin_token_file: absent\n", "listen.admin_token_file: {dir}/absent: no such file"),
    ("  admin: 127.0.0.1:9\n  bogus: 1\n", "c.yaml:3: listen.bogus: unknown key"),
])
def test_break_glass_bad_listen_section_is_a_located_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        listen: str, message: str) -> None:
    """A bad listen section itself still stops the command, with where and why."""
    monkeypatch.delenv("FAILOVER_ADMIN_TOKEN", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text("listen:\n" + listen + BROKEN_ELSEWHERE)
    assert main(["freeze", "--reason", "x", "-c", str(config)]) == 1
    assert message.format(dir=tmp_path) in capsys.readouterr().err


def _tls_config(folder: Path, cert: str, key: str) -> Path:
    path = folder / "tls.yaml"
    path.write_text(f"listen: {{tls: {{cert_file: {cert}, key_file: {key}}}}}\n"
                    "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"
                    f"state_dir: {folder / 'state'}\n")
    return path


def test_check_shows_the_certificate_and_warns_when_it_expires_soon(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Subject, fingerprint and expiry of listen.tls; a warning under 14 days left."""
    monkeypatch.setenv("FAILOVER_ADMIN_TOKEN", "t")
    ca = Authority(tmp_path / "ca")
    ca.issue("soon", days=5)
    ca.issue("later", days=200)
    assert main(["check", "-c", str(_tls_config(tmp_path, "ca/later.crt", "ca/later.key"))]) == 0
    captured = capsys.readouterr()
    assert "listen.tls: CN=later, sha256:" in captured.out
    assert "(200 days)" in captured.out
    assert "warning" not in captured.err
    assert main(["check", "-c", str(_tls_config(tmp_path, "ca/soon.crt", "ca/soon.key"))]) == 0
    assert "warning: listen.tls: the certificate expires in 5.0 days" in capsys.readouterr().err


def test_check_refuses_a_key_that_is_not_the_certificates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unreadable files and mismatched keys are refused at load, located, naming the files."""
    ca = Authority(tmp_path / "ca")
    ca.issue("one")
    ca.issue("two")
    path = _tls_config(tmp_path, "ca/one.crt", "ca/two.key")
    assert main(["check", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: listen.tls: key {tmp_path}/ca/two.key does not belong to certificate " \
           f"{tmp_path}/ca/one.crt" in err
    assert main(["check", "-c", str(_tls_config(tmp_path, "ca/none.crt", "ca/two.key"))]) == 1
    assert "none.crt: no such file" in capsys.readouterr().err
