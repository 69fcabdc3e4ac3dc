"""A real three-member etcd cluster on 127.0.0.1 for tests, each member a foreground process
in a temp folder, stopped at teardown (even while paused).

    with running_etcd(tmp_path) as cluster:
        ... cluster.endpoints (host:port of each member's client URL) ...
        cluster.members[0].pause()   # SIGSTOP: a partitioned member

etcd is required, not optional: CI installs it (Debian: etcd-server), and a missing binary
fails the test. Timings are the fast ones from etcd's tuning guide for a loopback RTT
(heartbeat 50 ms, election 500 ms), so the minimum lease TTL is 1 s and losing a member
costs about a second, not five.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import Foreground, free_port

STARTUP_TIMEOUT = 15.0
"""Seconds for all members to report healthy before the test fails."""
HEARTBEAT_MS, ELECTION_MS = 50, 500


@dataclass
class Member(Foreground):
    name: str
    client_port: int
    peer_port: int
    process: subprocess.Popen[bytes]
    log: Path
    paused: bool = False

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as r:
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
def running_etcd(folder: Path, size: int = 3) -> Iterator[Cluster]:
    binary = _binary()
    ports = [(free_port(), free_port()) for _ in range(size)]
    initial = ",".join(f"n{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    with ExitStack() as stack:
        members = []
        for i, (client, peer) in enumerate(ports):
            log = folder / f"etcd-n{i}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [binary, "--name", f"n{i}", "--data-dir", str(folder / f"etcd-n{i}"),
                     "--listen-client-urls", f"http://127.0.0.1:{client}",
                     "--advertise-client-urls", f"http://127.0.0.1:{client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", initial, "--initial-cluster-state", "new",
                     "--initial-cluster-token", "failover-test",
                     "--heartbeat-interval", str(HEARTBEAT_MS),
                     "--election-timeout", str(ELECTION_MS),
                     "--pre-vote=true", "--experimental-enable-lease-checkpoint=true",
                     "--quota-backend-bytes", str(64 * 1024 * 1024),
                     # 3.4 defaults to capnslog, whose warning path dereferences nil.
                     "--logger", "zap", "--log-level", "warn"],
                    stdout=out, stderr=subprocess.STDOUT)
            member = Member(f"n{i}", client, peer, process, log)
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
