"""What the daemon benchmarks share: a lab and a daemon probing it at its full budget, free
ports, HTTP calls, metric sums, CPU and memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(url: str, body: dict[str, object] | None = None, token: str | None = None,
         timeout: float = 10) -> bytes:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - same
        data: bytes = response.read()
        return data


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call(url)
        except OSError:
            time.sleep(0.2)
            continue
        return
    msg = f"{url} did not come up"
    raise SystemExit(msg)


def metric(text: str, name: str) -> float:
    """The sum of every series of ``name`` (all label sets) in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def probe_rate_and_lag(before: str, after: str, elapsed: float) -> tuple[float, float]:
    """Probe requests per second, and the mean event-loop lag in seconds, between two
    scrapes ``elapsed`` seconds apart."""

    def grew(name: str) -> float:
        return metric(after, name) - metric(before, name)

    lag = grew("failover_event_loop_lag_seconds_sum") / max(
        grew("failover_event_loop_lag_seconds_count"), 1)
    return grew("failover_probe_requests_total") / elapsed, lag


def buckets(text: str, name: str) -> dict[float, float]:
    """Cumulative counts by upper bound of an unlabelled histogram."""
    found: dict[float, float] = {}
    prefix = f'{name}_bucket{{le="'
    for line in text.splitlines():
        if line.startswith(prefix):
            bound, value = line[len(prefix):].split('"}', 1)
            found[float(bound)] = float(value)
    return found


def quantile_bound(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest bucket bound under which a fraction ``q`` of the samples taken between
    two scrapes fell (a histogram tells no finer than its buckets)."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return float("inf")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU of a process, or of one of its threads, from /proc."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set size now and its peak, in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def free_range(count: int, start: int) -> int:
    """A base port from which ``count`` ports are free for both TCP and UDP."""
    base = start
    while base + count < 65000:
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port))
        except OSError:
            base += count
            continue
        return base
    msg = f"no {count} free ports in a row above {start}"
    raise SystemExit(msg)


def fleet_config(folder: Path, clusters: int, dns_base: int, http_base: int, status: int,
                 admin: int) -> Path:
    # DNS (2 attempts) + HTTP (1) per cluster every 1 s, jitter 0.2: 3.75 requests/s worst
    # case per cluster; the budget is set just above the fleet's worst case.
    total = clusters * 3.75
    body = textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{status}", admin: "127.0.0.1:{admin}"}}
        state_dir: state
        probing:
          interval: 1s
          timeout: 800ms
          jitter: 0.2
          budget: {{per_target_per_second: 4, total_per_second: {total + 1:.0f},
                   max_in_flight: {int(total) + 8}}}
        policy: {{tick: 1s, min_healthy_fraction: 0.3}}
        actuators: [{{type: file, path: state/weights.json}}]
        clusters:
        """)
    for n in range(1, clusters + 1):
        body += textwrap.indent(textwrap.dedent(f"""\
            - name: lab-{n}
              weight: 1
              dns: {{server: "127.0.0.1:{dns_base + n - 1}", names: [api.svc.cluster.local]}}
              checks: [{{http: "http://127.0.0.1:{http_base + n - 1}/healthz"}}]
            """), "  ")
    path = folder / "config.yaml"
    path.write_text(body)
    return path


@dataclass
class Fleet:
    status: str
    """The status listener's base URL."""
    admin: str
    daemon: int
    """The daemon's pid."""


@contextlib.contextmanager
def fleet(clusters: int, *, hanging: bool, token: str) -> Iterator[Fleet]:
    """A lab of ``clusters`` (its own process, pinned to the last core) and the daemon on it
    (pinned to the first), ``fleet_config``'s budget full; with ``hanging``, every DNS and
    HTTP target of the lab hangs, so every probe runs to its timeout. Yields once the
    daemon's status listener answers; both stop at the end."""
    cores = sorted(os.sched_getaffinity(0))
    dns_base = free_range(clusters, 20000)
    http_base = free_range(clusters, dns_base + clusters)
    control, status, admin = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        lab = subprocess.Popen(
            [sys.executable, "-m", "failover", "lab", "--clusters", str(clusters),
             "--dns-base-port", str(dns_base), "--http-base-port", str(http_base),
             "--control", f"127.0.0.1:{control}"], stdout=subprocess.DEVNULL)
        daemon: subprocess.Popen[bytes] | None = None
        try:
            wait_for(f"http://127.0.0.1:{control}/v1/clusters")
            if hanging:
                for n in range(1, clusters + 1):
                    call(f"http://127.0.0.1:{control}/v1/clusters/lab-{n}/fault",
                         {"dns": "timeout", "http": "timeout"})
            path = fleet_config(folder, clusters, dns_base, http_base, status, admin)
            daemon = subprocess.Popen(
                [sys.executable, "-m", "failover", "run", "-c", str(path), "--log-level",
                 "warning"], env={**os.environ, "FAILOVER_ADMIN_TOKEN": token},
                stderr=(folder / "daemon.log").open("wb"))
            if len(cores) > 1:
                os.sched_setaffinity(lab.pid, {cores[-1]})
                os.sched_setaffinity(daemon.pid, {cores[0]})
            wait_for(f"http://127.0.0.1:{status}/healthz")
            yield Fleet(f"http://127.0.0.1:{status}", f"http://127.0.0.1:{admin}", daemon.pid)
        finally:
            for process in (daemon, lab):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(60)
                    except subprocess.TimeoutExpired:
                        # A lab of a thousand hung targets can take longer to close them
                        # all; the figures are taken by then.
                        print(f"{' '.join(process.args[2:4])} did not stop within 60 s: killed")
                        process.kill()
                        process.wait()
