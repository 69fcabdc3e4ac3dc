"""The admin listener on a Unix socket: made with its mode from the first instant, a
leftover from a dead daemon replaced, anything else at the path left alone."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from failover.api.server import bind_unix
from failover.config import ConfigError, parse
from failover.config.addresses import UnixSocket

CLUSTERS = "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"


def test_made_with_its_mode_and_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    sock = bind_unix(tmp_path / "admin.sock", 0o660, group)
    try:
        info = (tmp_path / "admin.sock").stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == os.getgid()
    finally:
        sock.close()


def test_a_leftover_socket_is_replaced_and_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    dead = bind_unix(path, 0o600, None)
    dead.close()  # what a daemon killed with -9 leaves: the file, nobody listening
    live = bind_unix(path, 0o600, None)
    try:
        live.listen()
        with pytest.raises(OSError, match="another process listens on it"):
            bind_unix(path, 0o600, None)
    finally:
        live.close()


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    path.write_text("someone's notes\n")
    with pytest.raises(OSError, match="a file that is not a socket is there"):
        bind_unix(path, 0o600, None)
    assert path.read_text() == "someone's notes\n"


def test_the_config_takes_a_socket_path_mode_and_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    config = parse(f"listen: {{admin: 'unix:var/admin.sock', admin_socket_mode: '0660', "
                   f"admin_socket_group: {group}}}\n" + CLUSTERS, base_dir=tmp_path)
    assert config.listen.admin == UnixSocket(tmp_path / "var" / "admin.sock")
    assert config.listen.admin_socket_mode == 0o660


@pytest.mark.parametrize(("listen", "why"), [
    ("{admin: 'unix:'}", "unix: needs a path"),
    ("{admin: 'unix:/run/a.sock', admin_socket_mode: '0999'}", "expected a file mode"),
    ("{admin: 'unix:/run/a.sock', admin_socket_group: no-such-group-here}",
     "no group named 'no-such-group-here'"),
    ("{admin: 'unix:/" + "d" * 120 + "/a.sock'}", "a Unix socket's path is at most 107"),
])
def test_a_bad_socket_setting_is_refused(listen: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse(f"listen: {listen}\n" + CLUSTERS)


def test_a_unix_admin_leaves_the_status_port_alone() -> None:
    """No port to clash with: the status listener keeps its own."""
    config = parse("listen: {status: '127.0.0.1:9471', admin: 'unix:/run/a.sock'}\n" + CLUSTERS)
    assert isinstance(config.listen.admin, UnixSocket)
