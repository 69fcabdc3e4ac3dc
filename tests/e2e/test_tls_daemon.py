"""End to end: the daemon serves `listen.tls`, takes renewed certificate files on SIGHUP
without dropping its listeners, keeps the old certificate when the new files are bad and
says why, and exports the certificate's expiry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from failover.daemon.reload import WATCH_EVERY as TOKEN_WATCH
from failover.lab import Lab
from tests.certs import Authority
from tests.e2e.test_daemon_with_lab import SLACK, daemon_process, wait_until, write_config
from tests.servers import free_port


def tls_config(folder: Path, lab: Lab, port: int) -> Path:
    path = write_config(folder, lab, port)
    text = path.read_text().replace(
        f'listen: {{status: "127.0.0.1:{port}", admin: "127.0.0.1:0"}}',
        f'listen:\n  status: "127.0.0.1:{port}"\n  admin: "127.0.0.1:0"\n'
        "  tls: {cert_file: tls/server.crt, key_file: tls/server.key}")
    path.write_text(text)
    return path


async def peer(url: str, context: ssl.SSLContext) -> tuple[str, int]:
    """The common name of the certificate a new connection sees, and the status of a GET
    on that connection."""
    host, port = url.removeprefix("https://").split("/", 1)[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        cert: Any = writer.get_extra_info("peercert")
        writer.write(f"GET /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n".encode())
        status = int((await reader.readline()).split()[1])
    finally:
        writer.close()
        await writer.wait_closed()
    return dict(pair[0] for pair in cert["subject"])["commonName"], status


async def test_renewed_certificates_are_served_after_sighup_and_bad_ones_refused(
        lab: Lab, tmp_path: Path) -> None:
    ca = Authority(tmp_path / "tls")
    ca.issue("server", days=30)
    port = free_port()
    trust = ssl.create_default_context(cafile=str(ca.cert))
    url = f"https://127.0.0.1:{port}"
    async with daemon_process(tls_config(tmp_path, lab, port), port) as daemon:

        async def serving() -> bool:
            try:
                return (await peer(url + "/healthz", trust))[1] in (200, 503)
            except OSError:  # not listening yet, or the handshake cut short
                return False

        await wait_until(serving, 20, "the daemon serving HTTPS")
        assert (await peer(url + "/v1/status", trust)) == ("server", 200)

        async def expiry() -> float | None:
            async with aiohttp.ClientSession() as session, session.get(
                    url + "/metrics", ssl=trust) as response:
                text = await response.text()
            for line in text.splitlines():
                if line.startswith('failover_tls_certificate_expiry_timestamp_seconds'
                                   '{listener="status"}'):
                    return float(line.rsplit(" ", 1)[1])
            return None

        first_expiry = await expiry()
        assert first_expiry is not None

        renewed = ca.issue("renewed", days=90)  # what an ACME client leaves in place
        renewed.cert.replace(tmp_path / "tls" / "server.crt")
        renewed.key.replace(tmp_path / "tls" / "server.key")
        daemon.process.send_signal(signal.SIGHUP)

        async def renewed_served() -> bool:
            return (await peer(url + "/healthz", trust))[0] == "renewed"

        await wait_until(renewed_served, 10, "the renewed certificate served")
        new_expiry = await expiry()
        assert new_expiry is not None
        assert new_expiry > first_expiry + 59 * 86400

        (tmp_path / "tls" / "server.key").write_text("not a key\n")
        daemon.process.send_signal(signal.SIGHUP)

        async def refused() -> bool:
            async with aiohttp.ClientSession() as session, session.get(
                    url + "/v1/status", ssl=trust) as response:
                reload = (await response.json())["config"]["last_reload"]
            return reload is not None and reload["result"] == "error"

        await wait_until(refused, 10, "the reload refused")
        async with aiohttp.ClientSession() as session, session.get(
                url + "/v1/status", ssl=trust) as response:
            error = (await response.json())["config"]["last_reload"]["error"]
        assert "server.key" in error
        assert "no PEM private key" in error
        assert (await peer(url + "/healthz", trust))[0] == "renewed"  # the old one stays
        assert daemon.process.returncode is None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "failover", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def as_nobody() -> None:  # runs in the child, before exec
    os.setgid(65534)
    os.setuid(65534)


async def test_the_cli_reaches_a_tls_status_listener_and_a_unix_socket_admin(
        lab: Lab, tmp_path: Path) -> None:
    """`failover status -c` trusts the certificate the daemon serves and presents the
    operator's client certificate; `failover freeze -c` goes through the admin socket, made
    0600: a user without write permission on it cannot even connect."""
    ca = Authority(tmp_path / "tls")
    ca.issue("server")
    operators = Authority(tmp_path / "operators", "operators' CA")
    alice = operators.issue("alice", server=False, client=True)
    port = free_port()
    path = tls_config(tmp_path, lab, port)
    # A folder anyone may pass through (pytest's own is root's alone), so that only the
    # socket file's mode stands between another user and the admin API.
    open_folder = Path(tempfile.mkdtemp(prefix="failover-admin-"))
    open_folder.chmod(0o711)
    socket_path = open_folder / "admin.sock"
    (tmp_path / "tokens").write_text("cli-token-0123456789\n")
    path.write_text(path.read_text().replace(
        '  admin: "127.0.0.1:0"\n',
        f'  admin: "unix:{socket_path}"\n  admin_token_file: tokens\n').replace(
        "key_file: tls/server.key}", "key_file: tls/server.key, "
                                     "client_ca_file: operators/ca.crt}"))
    async with daemon_process(path, port) as daemon:
        async def answering() -> bool:
            done = await asyncio.to_thread(
                run_cli, "status", "-c", str(path), "--cert", str(alice.cert),
                "--key", str(alice.key))
            return done.returncode == 0

        await wait_until(answering, 20, "failover status over HTTPS")
        shown = await asyncio.to_thread(run_cli, "status", "-c", str(path), "--cert",
                                        str(alice.cert), "--key", str(alice.key))
        assert "lab-1" in shown.stdout
        refused = await asyncio.to_thread(run_cli, "status", "-c", str(path))
        assert refused.returncode == 3  # no client certificate: the handshake is refused

        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        frozen = await asyncio.to_thread(run_cli, "freeze", "-c", str(path), "--reason",
                                         "over the socket")
        assert frozen.returncode == 0, frozen.stderr
        assert json.loads(frozen.stdout)["frozen"] is True
        # Rotation: the new token works and the removed one stops, within the watch's 2 s.
        old_token, new_token = tmp_path / "old-token", tmp_path / "new-token"
        old_token.write_text("cli-token-0123456789\n")
        new_token.write_text("rotated-token-9876543210\n")
        (tmp_path / "tokens").write_text("rotated-token-9876543210\n")

        async def rotated() -> bool:
            done = await asyncio.to_thread(run_cli, "unfreeze", "-c", str(path),
                                           "--token-file", str(new_token))
            return done.returncode == 0

        took = await wait_until(rotated, TOKEN_WATCH + SLACK, "the rotated token accepted")
        print(f"rotated token accepted after {took:.2f}s")
        stale = await asyncio.to_thread(run_cli, "freeze", "-c", str(path), "--reason", "x",
                                        "--token-file", str(old_token))
        assert stale.returncode == 1
        assert "a valid bearer token is required" in stale.stderr
        assert await connect_as_nobody(socket_path) == 13  # EACCES: the file's mode
        socket_path.chmod(0o666)  # the control: opened up, the same user gets in
        assert await connect_as_nobody(socket_path) == 0
        assert daemon.process.returncode is None
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.process.wait() == 0
    assert not socket_path.exists()  # removed when the daemon stopped
    open_folder.rmdir()


async def connect_as_nobody(socket_path: Path) -> int:
    """0 when user nobody connects to the socket, 13 when refused for permission."""
    probe = ("import socket, sys\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\n"
             "except PermissionError:\n    sys.exit(13)\n")
    # Debian's own Python: nobody may run it, not the venv's under root's home.
    done = await asyncio.to_thread(
        subprocess.run, ["/usr/bin/python3", "-c", probe, str(socket_path)],
        preexec_fn=as_nobody, capture_output=True, timeout=30, check=False)
    assert done.returncode in (0, 13), done.stderr
    return done.returncode
