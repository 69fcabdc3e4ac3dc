"""Debian's Prometheus for a test: in the foreground on a free 127.0.0.1 port, with its config
and TSDB in a folder of the test's, stopped when the block ends (failed test or not).

    with running_prometheus(tmp_path, scrape_config([ScrapeTarget("127.0.0.1:8000")])) as p:
        p.vector('my_gauge{cluster="a"}')
        p.stop()    # its series go stale in whoever queries it next...
        p.start()   # ...and it comes back on the same port, with the same TSDB

Scrapes and rule evaluations every second, so a test sees data within a couple of seconds.
Prometheus is required, not optional: ``scripts/setup --test`` installs it, and a missing
binary fails the test (naming the package). Starting and stopping block while they wait;
an async test whose own servers Prometheus scrapes uses `running_prometheus_async`, which
runs them in a thread so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import poll, tool
from tests.servers import free_port, terminate

START_TIMEOUT = 20.0
"""Seconds for Prometheus to answer ``/-/ready`` (a restart replays its WAL first)."""
STOP_TIMEOUT = 5.0
"""Seconds for Prometheus to exit after SIGTERM before it is killed."""
HTTP_TIMEOUT = 5.0
"""Seconds one API request of the helper may take."""
INTERVAL = "1s"
"""Scrape, scrape timeout and rule evaluation interval."""
START_ATTEMPTS = 3
"""First starts tried, each on a fresh port: another process may take a free port between
our check and Prometheus's bind."""


@dataclass(frozen=True)
class ScrapeTarget:
    address: str
    """``host:port`` of the server to scrape."""
    metrics_path: str = "/metrics"
    job: str = "test"


def scrape_config(targets: Sequence[ScrapeTarget], *, interval: str = INTERVAL,
                  rule_files: Sequence[Path] = ()) -> dict[str, Any]:
    """A prometheus.yml document scraping ``targets`` every ``interval``: one job per
    (job name, metrics path)."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for target in targets:
        jobs.setdefault((target.job, target.metrics_path), []).append(target.address)
    names = [job for job, _ in jobs]
    if len(set(names)) != len(names):
        msg = f"a job name has two metrics paths: {sorted(jobs)}"
        raise ValueError(msg)
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval,
                   "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "metrics_path": path,
                            "static_configs": [{"targets": addresses}]}
                           for (job, path), addresses in jobs.items()],
    }


class Prometheus:
    """One Prometheus server that a test can stop and start again on the same port."""

    def __init__(self, folder: Path, config: Mapping[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config_path = folder / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config)))
        self.tsdb = folder / "tsdb"
        self.log_path = folder / "prometheus.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        """The tail of its log (every run's, in order), for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.log_path.name}\n{text[-3000:]}"

    def check_running(self) -> None:
        """Fails the test if Prometheus was started and has exited since."""
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"prometheus exited with {self.process.returncode}\n{self.logs()}")

    def start(self) -> None:
        """Start it (again: same port, same TSDB); return once ``/-/ready`` answers."""
        if self.running:
            msg = "prometheus is already running"
            raise RuntimeError(msg)
        attempts = 1 if self._started_once else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._spawn()
            if poll(self._ready, START_TIMEOUT, "Prometheus ready", detail=self.logs):
                self._started_once = True
                return
            if attempt < attempts:
                self.port = free_port()  # lost the port to someone else: try another
        pytest.fail(f"prometheus did not start on 127.0.0.1:{self.port}\n{self.logs()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `STOP_TIMEOUT`; a stopped one is left alone."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process, STOP_TIMEOUT)

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """A Prometheus HTTP API document; errors (400, 422) come back as documents too."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 - loopback URL built here
                doc: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            doc = json.load(exc)
        return doc

    def query(self, expr: str) -> dict[str, Any]:
        """``/api/v1/query`` at the current time."""
        return self.api("/api/v1/query", query=expr)

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """The series of an instant query, as (labels, value); fails the test on an error."""
        doc = self.query(expr)
        assert doc["status"] == "success", doc
        assert doc["data"]["resultType"] == "vector", doc
        return [(series["metric"], float(series["value"][1]))
                for series in doc["data"]["result"]]

    def _spawn(self) -> None:
        argv = [tool("prometheus"), f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.tsdb}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        with self.log_path.open("ab") as log:  # a restart's log follows the first run's
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log)

    def _ready(self) -> bool | None:
        """True once ready, False once exited (the port was taken, say), None meanwhile."""
        if not self.running:
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT):  # noqa: S310 - loopback URL built here
                return True
        except OSError:  # not listening yet, or 503 while it starts
            return None


@contextlib.contextmanager
def running_prometheus(folder: Path, config: Mapping[str, Any]) -> Iterator[Prometheus]:
    """Prometheus started with ``config`` (see `scrape_config`), ready; stopped after."""
    prometheus = Prometheus(folder, config)
    try:
        prometheus.start()
        yield prometheus
    finally:
        prometheus.stop()


@contextlib.asynccontextmanager
async def running_prometheus_async(folder: Path, config: Mapping[str, Any],
                                   ) -> AsyncIterator[Prometheus]:
    """As `running_prometheus`, for a test whose loop serves what Prometheus scrapes: the
    blocking start and stop run in a thread. Call ``stop``/``start`` through
    ``asyncio.to_thread`` too."""
    prometheus = Prometheus(folder, config)
    try:
        await asyncio.to_thread(prometheus.start)
        yield prometheus
    finally:
        await asyncio.to_thread(prometheus.stop)
