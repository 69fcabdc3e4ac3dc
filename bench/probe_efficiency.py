"""Probes per CPU-second through the daemon, next to blackbox_exporter on the same targets.

Starts nginx and dnsmasq on loopback pinned to one core, then the daemon (`failover run`)
pinned to the other, on three loads:

- ``mixed``: 750 clusters x (DNS + HTTP) every 1 s, 1,500 probes/s; probes per CPU-second;
- ``fleet``: 1,000 clusters x (DNS + HTTP + TCP) every 2 s, 1,500 probes/s; CPU, RSS, lag;
- ``light``: 500 clusters x (DNS + HTTP) every 2 s, 500 probes/s; lag.

Each prints the rate asked for and achieved, the daemon's CPU (as % of one core), probes per
CPU-second, RSS 20 s after ready and its peak, and event-loop lag; and what the servers saw
(dnsmasq's query count, nginx's request count), which proves every probe reached them.
Where ``prometheus-blackbox-exporter`` and ``wrk`` are installed, the exporter is then pinned
to the daemon's core and driven by wrk (the targets' core) on its ``http_2xx`` and ``dns``
modules, and the ratio of the daemon's mixed figure to their mean is printed.

    .venv/bin/python bench/probe_efficiency.py [--loads mixed,fleet,light] [--window 30]

Needs nginx, dnsmasq and (for the comparison) prometheus-blackbox-exporter and wrk; see
bench/README.md. Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support import (
    buckets,
    call,
    cpu_seconds,
    free_port,
    memory_mb,
    metric,
    quantile_bound,
    wait_for,
)

NAME = "api.bench.test"
RSS_AT = 20.0
"""Seconds after ready at which RSS is read (the peak is read at the window's end)."""
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local benchmark


@dataclass(frozen=True)
class Load:
    clusters: int
    kinds: tuple[str, ...]
    interval: float

    @property
    def rate(self) -> float:
        return self.clusters * len(self.kinds) / self.interval


LOADS = {
    "mixed": Load(750, ("dns", "http"), 1.0),
    "fleet": Load(1000, ("dns", "http", "tcp"), 2.0),
    "light": Load(500, ("dns", "http"), 2.0),
}

NGINX = """\
worker_processes 1;
daemon off;
user root;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {run}; proxy_temp_path {run}; fastcgi_temp_path {run};
    uwsgi_temp_path {run}; scgi_temp_path {run};
    server {{
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        location = /healthz {{ default_type text/plain; return 200 "ok\\n"; }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""

BLACKBOX = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http: {{valid_status_codes: [200], preferred_ip_protocol: ip4, ip_protocol_fallback: false}}
  dns:
    prober: dns
    timeout: 5s
    dns:
      transport_protocol: udp
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      query_name: {name}
      query_type: A
      valid_rcodes: [NOERROR]
      validate_answer_rrs:
        fail_if_none_matches_regexp: [{pattern}]
"""

# Counts exporter replies whose body says the probe passed: a 200 only means it ran.
WRK_SCRIPT = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\\nprobe_success 1", 1, true) then ok = ok + 1
  else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("probe_ok=%d probe_bad=%d\\n", o, b))
end
"""


@dataclass
class Targets:
    run: Path
    http_port: int
    dns_port: int
    dnsmasq: subprocess.Popen[bytes]

    def http_counts(self) -> tuple[int, int]:
        """Connections nginx accepted and requests it served, from its stub_status."""
        text = call(f"http://127.0.0.1:{self.http_port}/nginx_status").decode()
        # "server accepts handled requests\n N N N"
        accepts, _, requests = text.splitlines()[2].split()
        return int(accepts), int(requests)

    def dns_queries(self) -> int:
        """Queries dnsmasq answered, from the statistics it logs on SIGUSR1."""
        log = self.run / "dnsmasq.log"
        seen = log.read_text().count("queries answered locally")
        self.dnsmasq.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = re.findall(r"queries answered locally (\d+)", log.read_text())
            if len(found) > seen:
                return int(found[-1])
            time.sleep(0.05)
        msg = "dnsmasq wrote no statistics"
        raise SystemExit(msg)


def pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


@contextlib.contextmanager
def targets(run: Path, cpu: int | None) -> Iterator[Targets]:
    http_port, dns_port = free_port(), free_port()
    while True:  # dnsmasq wants the port free for UDP and TCP
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET,
                                                         socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", dns_port))
            break
        dns_port = free_port()
    (run / "nginx.conf").write_text(NGINX.format(run=run, port=http_port))
    nginx = subprocess.Popen([*pin(cpu), "nginx", "-c", str(run / "nginx.conf"), "-p", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dnsmasq = subprocess.Popen(
        [*pin(cpu), "dnsmasq", "-C", "/dev/null", "--keep-in-foreground", f"--port={dns_port}",
         "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
         "--no-poll", f"--host-record={NAME},127.0.0.1", "--user=root", "--pid-file=",
         "--cache-size=0", f"--log-facility={run / 'dnsmasq.log'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{http_port}/healthz", 10)
        yield Targets(run, http_port, dns_port, dnsmasq)
    finally:
        for process in (dnsmasq, nginx):
            process.terminate()
            process.wait(10)


def daemon_config(folder: Path, load: Load, where: Targets, status: int, admin: int) -> Path:
    # Every cluster probes the same two servers: the budget is sized for the fleet, since
    # what is measured is the prober's cost, not a per-target cap.
    requests = load.rate * 3 + 100
    body = textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{status}", admin: "127.0.0.1:{admin}"}}
        state_dir: state
        probing:
          interval: {load.interval}s
          timeout: 800ms
          jitter: 0.2
          budget: {{per_target_per_second: {requests:.0f}, total_per_second: {requests:.0f},
                   max_in_flight: 4096}}
        policy: {{tick: 1s, min_healthy_fraction: 0.3}}
        actuators: [{{type: file, path: state/weights.json}}]
        clusters:
        """)
    checks = []
    if "http" in load.kinds:
        checks.append(f'{{http: "http://127.0.0.1:{where.http_port}/healthz"}}')
    if "tcp" in load.kinds:
        checks.append(f'{{tcp: "127.0.0.1:{where.http_port}"}}')
    for n in range(load.clusters):
        body += f"  - name: c{n}\n    weight: 1\n"
        if "dns" in load.kinds:
            body += (f'    dns: {{server: "127.0.0.1:{where.dns_port}", names: [{NAME}], '
                     f"expect: [127.0.0.1]}}\n")
        body += f"    checks: [{', '.join(checks)}]\n"
    (folder / "state").mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(body)
    return path


def measure_daemon(name: str, load: Load, where: Targets, folder: Path, cpu: int | None,
                   warmup: float, window: float, profile: str | None) -> float:
    status, admin = free_port(), free_port()
    path = daemon_config(folder, load, where, status, admin)
    daemon = subprocess.Popen(
        [*pin(cpu), sys.executable, "-m", "failover", "run", "-c", str(path),
         "--log-level", "warning"], cwd=folder,
        env={**os.environ, "FAILOVER_ADMIN_TOKEN": TOKEN},
        stderr=(folder / f"daemon-{name}.log").open("wb"))
    try:
        wait_for(f"http://127.0.0.1:{status}/healthz", 60)
        ready = time.monotonic()
        time.sleep(warmup)
        before = call(f"http://127.0.0.1:{status}/metrics", timeout=30).decode()
        dns0, (accepts0, http0) = where.dns_queries(), where.http_counts()
        cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
        if profile:
            # py-spy samples from outside the process: what it costs lands on the other core.
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            subprocess.run([spy, "record", "-p", str(daemon.pid), "-d", f"{window:.0f}",
                            "-r", "200", "-f", "raw", "-o", f"{profile}-{name}.txt"],
                           capture_output=True, check=True)
        else:
            # RSS as the issue asks for it, 20 s after ready, if that falls in the window.
            time.sleep(max(0.0, min(window, ready + RSS_AT - time.monotonic())))
            rss_at = time.monotonic() - ready
            rss, _ = memory_mb(daemon.pid)
            time.sleep(max(0.0, t0 + window - time.monotonic()))
        cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
        if profile:
            rss_at = t1 - ready
            rss, _ = memory_mb(daemon.pid)
        _, peak = memory_mb(daemon.pid)
        dns1, (accepts1, http1) = where.dns_queries(), where.http_counts()
        after = call(f"http://127.0.0.1:{status}/metrics", timeout=30).decode()
        reads = [read_cost(daemon.pid, f"http://127.0.0.1:{status}{route}")
                 for route in ("/metrics", "/v1/status")]
        died = daemon.poll()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    if died is not None:
        msg = f"the daemon exited ({died}); see {folder}/daemon-{name}.log"
        raise SystemExit(msg)
    elapsed, used = t1 - t0, cpu1 - cpu0
    # Counted where they arrive, over exactly the window (the daemon's own counters are read
    # by scrapes that take a while): every DNS query, and every connection nginx accepted
    # (HTTP and TCP probes alike), less the one that read nginx's counters.
    probes = dns1 - dns0 + accepts1 - accepts0 - 1
    lag = "failover_event_loop_lag_seconds"
    lag_before, lag_after = buckets(before, lag), buckets(after, lag)
    lag_mean = ((metric(after, f"{lag}_sum") - metric(before, f"{lag}_sum"))
                / max(1.0, metric(after, f"{lag}_count") - metric(before, f"{lag}_count")))
    per_cpu = probes / used if used else float("inf")
    print(f"\n{name}: {load.clusters} clusters x ({' + '.join(load.kinds)}) every "
          f"{load.interval:g} s, {elapsed:.1f} s window, daemon on CPU {cpu}")
    print(f"  asked {load.rate:,.0f} probes/s, ran {probes / elapsed:,.0f}/s "
          f"({100 * probes / elapsed / load.rate:.1f} %, at the servers); "
          f"{_failures(before, after)}")
    print(f"  CPU {100 * used / elapsed:.1f} % of a core; {per_cpu:,.0f} probes per CPU-second")
    print(f"  RSS {rss:.0f} MB at {rss_at:.0f} s after ready, peak {peak:.0f} MB by "
          f"{t1 - ready:.0f} s")
    print(f"  event-loop lag mean {lag_mean * 1000:.2f} ms, p99 <= "
          f"{quantile_bound(lag_before, lag_after, 0.99) * 1000:g} ms (bucket bound)")
    for line in reads:
        print(f"  {line}")
    print(f"  servers saw {dns1 - dns0:,} DNS queries, {http1 - http0 - 1:,} HTTP requests, "
          f"{accepts1 - accepts0 - 1 - (http1 - http0 - 1):,} bare TCP connections")
    return per_cpu


def read_cost(pid: int, url: str, times: int = 3) -> str:
    """What one GET of ``url`` costs the event loop, under the load running: the main
    thread's CPU during the request, less what the load takes of it in the same time."""
    c0, t0 = cpu_seconds(pid, pid), time.monotonic()
    time.sleep(2)
    rate = (cpu_seconds(pid, pid) - c0) / (time.monotonic() - t0)
    loop, wall, size = [], [], 0
    for _ in range(times):
        c0, t0 = cpu_seconds(pid, pid), time.monotonic()
        size = len(call(url, timeout=60))
        elapsed = time.monotonic() - t0
        wall.append(elapsed)
        loop.append(max(0.0, cpu_seconds(pid, pid) - c0 - rate * elapsed))
        time.sleep(1)
    return (f"GET {url.split('/', 3)[3]}: {size / 1e6:.2f} MB, {1000 * min(wall):.0f}-"
            f"{1000 * max(wall):.0f} ms to serve, event-loop time {1000 * min(loop):.0f}-"
            f"{1000 * max(loop):.0f} ms (main thread's CPU beyond the load's)")


def _results(text: str) -> dict[tuple[str, str], float]:
    """Probes run by (kind, result)."""
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("failover_probes_total{"):
            labels, value = line.rsplit(" ", 1)
            kind = labels.split('kind="', 1)[1].split('"', 1)[0]
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            found[kind, result] = found.get((kind, result), 0.0) + float(value)
    return found


def _failures(before: str, after: str) -> str:
    start, end = _results(before), _results(after)
    counts = {key: end[key] - start.get(key, 0.0) for key in end if key[1] != "ok"}
    shown = [f"{kind} {result} {count:.0f}" for (kind, result), count in sorted(counts.items())
             if count]
    return f"{sum(counts.values()):.0f} failed" + (f" ({', '.join(shown)})" if shown else "")


def measure_blackbox(where: Targets, folder: Path, cpu: int | None,
                     target_cpu: int | None, seconds: int) -> float | None:
    if not (shutil.which("prometheus-blackbox-exporter") and shutil.which("wrk")):
        print("\nblackbox_exporter or wrk not installed: no comparison (see bench/README.md)")
        return None
    port = free_port()
    answer = re.escape(f"{NAME}.") + r"\s+\d+\s+IN\s+A\s+127\.0\.0\.1"
    # A JSON string is a YAML double-quoted scalar: the backslashes survive as written.
    (folder / "blackbox.yml").write_text(BLACKBOX.format(name=NAME, pattern=json.dumps(answer)))
    (folder / "probe_success.lua").write_text(WRK_SCRIPT)
    exporter = subprocess.Popen(
        [*pin(cpu), "prometheus-blackbox-exporter", f"--config.file={folder / 'blackbox.yml'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures = []
    try:
        wait_for(f"http://127.0.0.1:{port}/metrics", 10)
        print("\nblackbox_exporter on the same targets, wrk -c64 (per CPU-second of the exporter)")
        modules = {"http_2xx": f"http://127.0.0.1:{where.http_port}/healthz",
                   "dns": f"127.0.0.1:{where.dns_port}"}
        for module, target in modules.items():
            url = f"http://127.0.0.1:{port}/probe?module={module}&target={target}"
            wrk = [*pin(target_cpu), "wrk", "-t1", "-c64", "--timeout", "6s",
                   "-s", str(folder / "probe_success.lua")]
            subprocess.run([*wrk, "-d2s", url], capture_output=True, check=True)  # warm-up
            cpu0 = cpu_seconds(exporter.pid)
            out = subprocess.run([*wrk, f"-d{seconds}s", url], capture_output=True, text=True,
                                 check=True).stdout
            used = cpu_seconds(exporter.pid) - cpu0
            found = re.search(r"probe_ok=(\d+) probe_bad=(\d+)", out)
            if found is None:
                msg = f"wrk printed no probe counts: {out}"
                raise SystemExit(msg)
            ok, bad = int(found[1]), int(found[2])
            figures.append(ok / used)
            print(f"  {module:9} {ok / seconds:,.0f} probes/s, {bad} failed, "
                  f"{ok / used:,.0f} probes per CPU-second")
    finally:
        exporter.terminate()
        exporter.wait(10)
    return sum(figures) / len(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", default="mixed,fleet,light",
                        help=f"comma list of {', '.join(LOADS)}")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds after ready: every cluster's first verdicts and moves")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--blackbox-seconds", type=int, default=10)
    parser.add_argument("--profile", metavar="PREFIX",
                        help="record the daemon with py-spy over each window, into "
                             "PREFIX-LOAD.txt (collapsed stacks)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    daemon_cpu, target_cpu = (cores[0], cores[-1]) if len(cores) > 1 else (None, None)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        with targets(folder, target_cpu) as where:
            for name in args.loads.split(","):
                results[name] = measure_daemon(name, LOADS[name], where, folder, daemon_cpu,
                                               args.warmup, args.window, args.profile)
            blackbox = measure_blackbox(where, folder, daemon_cpu, target_cpu,
                                        args.blackbox_seconds)
    if blackbox and "mixed" in results:
        print(f"\ndaemon (mixed) {results['mixed']:,.0f} vs blackbox mean {blackbox:,.0f} probes "
              f"per CPU-second: {results['mixed'] / blackbox:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
