"""End to end: the daemon serves `listen.tls`, takes renewed certificate files on SIGHUP
without dropping its listeners, keeps the old certificate when the new files are bad and
says why, and exports the certificate's expiry."""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from failover.lab import Lab
from tests.certs import Authority
from tests.e2e.test_daemon_with_lab import daemon_process, wait_until, write_config
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
