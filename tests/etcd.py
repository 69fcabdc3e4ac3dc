"""A real three-member etcd cluster on 127.0.0.1 for tests, each member a foreground process
in a temp folder, stopped at teardown (even while paused).

    with running_etcd(tmp_path) as cluster:
        ... cluster.endpoints (host:port of each member's client URL) ...
        cluster.members[0].pause()   # SIGSTOP: a partitioned member

    with running_etcd(tmp_path, tls=EtcdTls(ca, server, client)) as cluster:
        ... the members serve clients over HTTPS only, and require a client certificate

etcd is required, not optional: CI installs it (Debian: etcd-server), and a missing binary
fails the test. Timings are the fast ones from etcd's tuning guide for a loopback RTT
(heartbeat 50 ms, election 500 ms), so the minimum lease TTL is 1 s and losing a member
costs about a second, not five.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.certs import Issued
from tests.servers import Foreground, free_port

STARTUP_TIMEOUT = 15.0
"""Seconds for all members to report healthy before the test fails."""
HEARTBEAT_MS, ELECTION_MS = 50, 500


@dataclass(frozen=True)
class EtcdTls:
    """Client TLS for every member: ``server`` is the members' certificate (127.0.0.1),
    ``ca`` the CA file they trust client certificates from; ``client`` is the certificate
    the helper itself checks their health with."""

    ca: Path
    server: Issued
    client: Issued
    client_cert_auth: bool = True
    """``--client-cert-auth``: a client without a certificate ``ca`` signed is refused."""

    def __post_init__(self) -> None:
        # etcd's gRPC gateway dials its own member with ``server`` as a client certificate:
        # without the client use, every gateway call is a 503 "connection closed", while
        # /health (served apart from the gateway) still says healthy.
        usages = x509.load_pem_x509_certificate(self.server.cert.read_bytes()) \
            .extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if self.client_cert_auth and ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            msg = (f"{self.server.cert}: with --client-cert-auth etcd's own certificate "
                   "needs client use too (issue it with client=True)")
            raise ValueError(msg)

    def flags(self) -> list[str]:
        return ["--cert-file", str(self.server.cert), "--key-file", str(self.server.key),
                "--trusted-ca-file", str(self.ca),
                f"--client-cert-auth={'true' if self.client_cert_auth else 'false'}"]

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client.cert), str(self.client.key))
        return context


@dataclass
class Member(Foreground):
    name: str
    client_port: int
    peer_port: int
    process: subprocess.Popen[bytes]
    log: Path
    paused: bool = False
    tls: EtcdTls | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.endpoint}"

    def healthy(self) -> bool:
        context = None if self.tls is None else self.tls.context()
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1,  # noqa: S310 - loopback URL built here
                                        context=context) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (OSError, urllib.error.URLError, ValueError):
            return False


@dataclass
class Cluster:
    members: list[Member]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]


def _binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        msg = "etcd not found on PATH: install Debian's etcd-server (CI does)"
        raise RuntimeError(msg)
    return found


@contextmanager
def running_etcd(folder: Path, size: int = 3, tls: EtcdTls | None = None,
                 ) -> Iterator[Cluster]:
    """``size`` members; with ``tls``, their client URLs are HTTPS only (the peers still
    talk plain HTTP to each other: loopback, and not what the tests are about)."""
    binary = _binary()
    scheme = "http" if tls is None else "https"
    ports = [(free_port(), free_port()) for _ in range(size)]
    initial = ",".join(f"n{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    with ExitStack() as stack:
        members = []
        for i, (client, peer) in enumerate(ports):
            log = folder / f"etcd-n{i}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [binary, "--name", f"n{i}", "--data-dir", str(folder / f"etcd-n{i}"),
                     "--listen-client-urls", f"{scheme}://127.0.0.1:{client}",
                     "--advertise-client-urls", f"{scheme}://127.0.0.1:{client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", initial, "--initial-cluster-state", "new",
                     "--initial-cluster-token", "failover-test",
                     "--heartbeat-interval", str(HEARTBEAT_MS),
                     "--election-timeout", str(ELECTION_MS),
                     "--pre-vote=true", "--experimental-enable-lease-checkpoint=true",
                     "--quota-backend-bytes", str(64 * 1024 * 1024),
                     # 3.4 defaults to capnslog, whose warning path dereferences nil.
                     "--logger", "zap", "--log-level", "warn",
                     *([] if tls is None else tls.flags())],
                    stdout=out, stderr=subprocess.STDOUT)
            member = Member(f"n{i}", client, peer, process, log, tls=tls)
            stack.callback(member.stop_process)
            members.append(member)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(m.healthy() for m in members):
            for m in members:
                if m.process.poll() is not None:
                    msg = f"etcd {m.name} exited: {m.log.read_text()[-2000:]}"
                    raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"etcd cluster not healthy within {STARTUP_TIMEOUT:g}s"
                raise RuntimeError(msg)
            time.sleep(0.05)  # polling an outside process's health endpoint
        yield Cluster(members)
