"""deploy/systemd/failover.service: systemd's own verifier accepts it, it is hardened, and it
agrees with the config it ships beside."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from failover.config import load
from tests.deploy.tools import SYSTEMD_CONFIG, UNIT, run

INSTALLED = "/opt/failover/bin/failover"
"""Where docs/production.md installs the command, and where the unit runs it from."""
MAX_EXPOSURE = 2.0
"""`systemd-analyze security` exposure (0 best, 10 worst) the unit must stay at or below."""


def _directives(text: str) -> dict[str, list[str]]:
    """Section.Key -> values in order; systemd allows a key more than once."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def _one(key: str) -> str:
    [value] = _directives(UNIT.read_text())[f"Service.{key}"]
    return value


def _runnable_copy(folder: Path) -> Path:
    """The unit with this checkout's `failover` where the install path is: verify checks that
    every command exists and is executable, and nothing is installed in /opt here."""
    here = str(Path(sys.executable).with_name("failover"))
    copy = folder / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALLED, here))
    return copy


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` passes with nothing on stderr: no unknown key, no bad value."""
    result = run(["systemd-analyze", "verify", str(_runnable_copy(tmp_path))])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_security_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security --offline` rates the unit's exposure at most 2.0 ("OK")."""
    result = run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                  str(_runnable_copy(tmp_path))])
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_is_hardened_as_the_issue_asks() -> None:
    """No privileges, a read-only system but for the state directory, private /tmp, no home,
    internet and unix sockets only."""
    assert _one("NoNewPrivileges") == "yes"
    assert _one("ProtectSystem") == "strict"
    assert _one("ProtectHome") == "yes"
    assert _one("PrivateTmp") == "yes"
    assert _one("DynamicUser") == "yes"
    assert _one("CapabilityBoundingSet") == ""
    assert set(_one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_unit_stops_reloads_and_restarts_as_the_daemon_expects() -> None:
    """SIGTERM to stop within a short timeout, SIGHUP to reload after a config check, restart
    on failure."""
    assert _one("KillSignal") == "SIGTERM"
    assert _one("TimeoutStopSec").removesuffix("s").isdigit()
    assert int(_one("TimeoutStopSec").removesuffix("s")) <= 30
    assert _one("Restart") == "on-failure"
    reload = [shlex.split(v) for v in _directives(UNIT.read_text())["Service.ExecReload"]]
    assert reload == [[INSTALLED, "check", "-c", "/etc/failover/config.yaml"],
                      ["/bin/kill", "-HUP", "$MAINPID"]]
    start = shlex.split(_one("ExecStart"))
    assert start[:4] == [INSTALLED, "run", "-c", "/etc/failover/config.yaml"]


def test_unit_and_its_config_agree() -> None:
    """The only writable path is the config's state_dir, and the admin token file is where
    LoadCredential= puts it."""
    config = load(SYSTEMD_CONFIG)
    assert _one("ReadWritePaths").split() == [str(config.state_dir)]
    assert f"/var/lib/{_one('StateDirectory')}" == str(config.state_dir)
    name, _, _source = _one("LoadCredential").partition(":")
    assert str(config.listen.admin_token_file) == f"/run/credentials/{UNIT.name}/{name}"
    # The admin socket is where RuntimeDirectory= makes a folder the service may write.
    assert str(config.listen.admin) == f"unix:/run/{_one('RuntimeDirectory')}/admin.sock"
    assert config.listen.admin_socket_mode == 0o600
