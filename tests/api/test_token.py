"""The admin token: one reader, and every file that gives no token refused naming key, path, why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from failover.api.token import MAX_TOKEN_BYTES, TOKEN_ENV, TokenError, admin_token
from failover.config import parse

KEY = "listen.admin_token_file"


def config_with(path: Path | None) -> object:
    listen = "" if path is None else f"listen: {{admin_token_file: '{path}'}}\n"
    return parse(listen + "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n")


def token_of(path: Path | None, environ: dict[str, str] | None = None) -> str | None:
    return admin_token(config_with(path), environ or {})  # type: ignore[arg-type]


def test_token_file_gives_its_stripped_content(tmp_path: Path) -> None:
    """A token file's content, surrounding whitespace stripped, is the token."""
    (tmp_path / "token").write_text("  s3cret\n")
    assert token_of(tmp_path / "token") == "s3cret"


def test_environment_wins_and_no_source_is_none(tmp_path: Path) -> None:
    """FAILOVER_ADMIN_TOKEN overrides the file (not even read); neither given: None."""
    assert token_of(tmp_path / "absent", {TOKEN_ENV: " from-env "}) == "from-env"
    assert token_of(None) is None


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("make", "why"), [
    (lambda d: d / "absent", "no such file"),
    (lambda d: d, "not a regular file (a directory)"),
    (lambda d: _fifo(d / "fifo"), "not a regular file (a FIFO)"),
    (lambda d: Path("/dev/zero"), "not a regular file (a character device)"),
    (lambda d: _file(d / "empty", b" \n\t\n"), "empty (no token in it)"),
    (lambda d: _file(d / "comments", b"# rotated out\n\n"), "empty (no token in it)"),
    (lambda d: _file(d / "big", b"x" * (MAX_TOKEN_BYTES + 1)),
     f"too large ({MAX_TOKEN_BYTES + 1} bytes"),
    (lambda d: _file(d / "bin", b"\xff\xfe"), "not UTF-8 text"),
    (lambda d: _file(d / "spaced", b"one two\n"), "line 1: whitespace or control"),
])
def test_unusable_token_file_is_refused_naming_key_path_and_why(
        tmp_path: Path, make: object, why: str) -> None:
    """Missing, not regular (a FIFO or /dev/zero is never read), empty, too large, not
    text, or not one word: refused at once, the message naming the key, the path and why."""
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(TokenError) as info:
        token_of(path)
    assert str(info.value).startswith(f"{KEY}: {path}: {why}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_token_file_is_refused(tmp_path: Path) -> None:
    """A file the daemon may not read: refused as unreadable, naming key and path."""
    path = tmp_path / "token"
    path.write_text("s3cret")
    path.chmod(0)
    with pytest.raises(TokenError, match=f"^{KEY}: {path}: unreadable: permission denied"):
        token_of(path)
