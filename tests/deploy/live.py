"""A real scrape: the daemon against a lab of three clusters, scraped by Debian's Prometheus
loaded with deploy/prometheus's job and rules. Every process runs in the foreground on
127.0.0.1 with free ports (Prometheus through `tests.prometheus`), and is stopped when the
block ends.

    with running_stack(tmp_path) as stack:
        stack.query('failover_cluster_share{cluster="lab-1"}')
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import PROMETHEUS_YML, free_port, poll
from tests.prometheus import INTERVAL, Prometheus
from tests.servers import terminate

START_TIMEOUT = 20.0
"""Seconds for each process to come up (the lab, the daemon, Prometheus)."""
STOP_TIMEOUT = 5.0
"""Seconds for a process to exit after SIGTERM before it is killed."""
HTTP_TIMEOUT = 5.0
SCRAPE_INTERVAL = INTERVAL
"""Fast scrapes and rule evaluations, so a test sees data within seconds."""
WEIGHTS = {"lab-1": 50, "lab-2": 30, "lab-3": 20}
"""Base weights: with every cluster healthy, lab-1's share is 0.5."""

_LAB_LINE = re.compile(r"^(lab-\d+): dns (\S+) \(answers (\S+)\), http (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class LabCluster:
    name: str
    dns: str
    answer: str
    http: str


@dataclass
class Stack:
    folder: Path
    daemon_url: str
    prometheus: Prometheus | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    """The lab and the daemon; Prometheus is `prometheus`."""

    @property
    def prometheus_url(self) -> str:
        assert self.prometheus is not None, "Prometheus is not started yet"
        return self.prometheus.url

    def logs(self) -> str:
        """The tail of every process's log, for failure messages."""
        logs = [f"--- {name}.log\n"
                f"{(self.folder / f'{name}.log').read_text(errors='replace')[-3000:]}"
                for name in self.processes]
        if self.prometheus is not None:
            logs.append(self.prometheus.logs())
        return "\n".join(logs)

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}\n{self.logs()}")
        if self.prometheus is not None and self.prometheus.process is not None:
            self.prometheus.check_running()

    def daemon_metrics(self) -> str:
        """The daemon's /metrics, as Prometheus reads it."""
        url = self.daemon_url + "/metrics"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:  # noqa: S310 - loopback URL built here
            text: str = r.read().decode()
            return text

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """A Prometheus HTTP API document; errors (400, 422) come back as documents too."""
        assert self.prometheus is not None, "Prometheus is not started yet"
        return self.prometheus.api(path, **params)

    def query(self, expr: str) -> dict[str, Any]:
        """``/api/v1/query`` at the current time."""
        assert self.prometheus is not None, "Prometheus is not started yet"
        return self.prometheus.query(expr)


def _start(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def write_daemon_config(folder: Path, clusters: Sequence[LabCluster], status_port: int) -> Path:
    """Fast probing and planning, so the first plan comes within a couple of seconds."""
    entries = "".join(textwrap.dedent(f"""\
        - name: {c.name}
          weight: {WEIGHTS[c.name]}
          dns: {{server: "{c.dns}", names: [api.default.svc.cluster.local],
                expect: ["{c.answer}"]}}
          checks:
            - http: {c.http}/healthz
            - tcp: "{c.http.removeprefix('http://')}"
        """) for c in clusters)
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{status_port}", admin: "127.0.0.1:0"}}
        state_dir: state
        probing:
          interval: 0.5
          timeout: 0.3
          budget: {{per_target_per_second: 10, total_per_second: 200, max_in_flight: 32}}
        policy: {{tick: 0.2}}
        actuators:
          - {{type: file, path: state/weights.json}}
        clusters:
        """) + textwrap.indent(entries, "  "))
    return path


def prometheus_config(target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its ``failover`` job pointed at ``target``, the
    other jobs (compose's HAProxy, Prometheus itself) left out, and faster intervals. The
    rule files are deploy's own."""
    doc: dict[str, Any] = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = [job for job in doc["scrape_configs"] if job["job_name"] == "failover"]
    assert len(jobs) == 1, "deploy/prometheus/prometheus.yml must have one job 'failover'"
    doc["scrape_configs"] = [{**jobs[0], "static_configs": [{"targets": [target]}]}]
    doc["global"].update(scrape_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL,
                         evaluation_interval=SCRAPE_INTERVAL)
    doc["rule_files"] = [str(PROMETHEUS_YML.parent / name) for name in doc["rule_files"]]
    return doc


def _lab_clusters(stack: Stack) -> list[LabCluster] | None:
    stack.check_running()
    found = _LAB_LINE.findall((stack.folder / "lab.log").read_text(errors="replace"))
    return [LabCluster(*row) for row in found] if len(found) == len(WEIGHTS) else None


def _ready(stack: Stack, url: str) -> bool | None:
    stack.check_running()
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT):  # noqa: S310 - loopback URL built here
            return True
    except OSError:  # not listening yet, or 503 while it starts
        return None


@contextlib.contextmanager
def running_stack(folder: Path) -> Iterator[Stack]:
    """Lab, daemon and Prometheus, up and answering; all stopped when the block ends."""
    status_port = free_port()
    stack = Stack(folder, f"http://127.0.0.1:{status_port}")
    try:
        stack.processes["lab"] = _start(
            [sys.executable, "-m", "failover", "lab", "--clusters", str(len(WEIGHTS)),
             "--host", "127.0.0.1", "--dns-base-port", "0", "--http-base-port", "0",
             "--control", "none"], folder / "lab.log")
        clusters = poll(lambda: _lab_clusters(stack), START_TIMEOUT, "lab listening",
                        detail=stack.logs)
        config = write_daemon_config(folder, clusters, status_port)
        stack.processes["daemon"] = _start(
            [sys.executable, "-m", "failover", "run", "-c", str(config), "--log-format",
             "json"], folder / "daemon.log")
        # Started while the daemon comes up; it waits for its own /-/ready only.
        stack.prometheus = Prometheus(folder, prometheus_config(f"127.0.0.1:{status_port}"))
        stack.prometheus.start()
        # /readyz: every cluster has a verdict, so /metrics has the plan's series.
        poll(lambda: _ready(stack, stack.daemon_url + "/readyz"), START_TIMEOUT, "daemon ready",
             detail=stack.logs)
        yield stack
    finally:
        if stack.prometheus is not None:
            stack.prometheus.stop()
        for process in reversed(stack.processes.values()):
            terminate(process, STOP_TIMEOUT)
