"""etcd load of the distributed mode in steady state: three replicas (processes) of the
daemon, each watching N clusters, against a real three-member etcd on loopback.

Every cluster has one TCP check to its own loopback address (127.0.x.y, one listener on
0.0.0.0 answers them all), so each replica probes N distinct targets within budget. After a
warm-up the bench reads etcd's own counters (``etcd_mvcc_put_total``, ``_txn_total``,
``_range_total``, ``_delete_total`` from the first member's /metrics, which count the whole
cluster's applied requests) over a window and prints writes and reads per second, per
replica and per tick.

    .venv/bin/python bench/etcd_load.py [--clusters 1000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import free_port

from tests.etcd import running_etcd  # the tests' etcd, started the same way

TICK, INTERVAL, TTL = 1.0, 5.0, 6.0
COUNTERS = ("put", "txn", "range", "delete")


def counters(endpoint: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        for name in COUNTERS:
            if line.startswith(f"etcd_mvcc_{name}_total "):
                found[name] = float(line.split()[1])
    return found


def config(folder: Path, name: str, clusters: int, target_port: int,
           endpoints: list[str]) -> Path:
    entries = "".join(
        f"  - {{name: c{n:05d}, weight: 1, checks: "
        f"[{{tcp: \"127.0.{n // 250}.{n % 250 + 1}:{target_port}\"}}]}}\n"
        for n in range(clusters))
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{free_port()}", admin: "127.0.0.1:0"}}
        state_dir: state-{name}
        probing: {{interval: {INTERVAL}, timeout: 1s, jitter: 0.2,
                  budget: {{total_per_second: 100000, max_in_flight: 512}}}}
        policy: {{tick: {TICK}}}
        coordination:
          etcd: {{endpoints: [{", ".join(f'"{e}"' for e in endpoints)}], prefix: /bench,
                 lease_ttl: {TTL}s, timeout: 1s}}
          vantage: {name}
        actuators:
          - {{type: file, path: {folder / "weights.json"}}}
        clusters:
        """) + entries)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp, running_etcd(Path(temp)) as etcd:
        folder = Path(temp)
        listener = socket.create_server(("0.0.0.0", 0), backlog=4096)  # noqa: S104 - loopback only by its clients
        target_port = listener.getsockname()[1]
        accept = subprocess.Popen(  # a child that accepts and closes, off this process
            [sys.executable, "-c", "import socket,sys\n"
             "s=socket.socket(fileno=int(sys.argv[1]))\n"
             "while True:\n c,_=s.accept(); c.close()", str(listener.fileno())],
            pass_fds=(listener.fileno(),))
        replicas = []
        try:
            for name in ("a", "b", "c"):
                path = config(folder, name, args.clusters, target_port, etcd.endpoints)
                log = (folder / f"{name}.log").open("wb")
                replicas.append(subprocess.Popen(
                    [sys.executable, "-m", "failover", "run", "-c", str(path)],
                    stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
            time.sleep(args.warmup)  # the fleet's first verdicts, the first plans
            for replica in replicas:
                if replica.poll() is not None:
                    print((folder / "a.log").read_text()[-3000:])
                    raise SystemExit("a replica exited during the warm-up")
            before, started = counters(etcd.endpoints[0]), time.monotonic()
            time.sleep(args.seconds)
            after, elapsed = counters(etcd.endpoints[0]), time.monotonic() - started
        finally:
            for replica in replicas:
                replica.terminate()
            for replica in replicas:
                replica.wait(10)
            accept.kill()
            accept.wait()
        rates = {k: (after[k] - before[k]) / elapsed for k in COUNTERS}
        writes = rates["put"] + rates["txn"] + rates["delete"]
        print(json.dumps({
            "clusters": args.clusters, "replicas": 3, "seconds": round(elapsed, 1),
            "tick_s": TICK, "probe_interval_s": INTERVAL, "lease_ttl_s": TTL,
            "per_second": {k: round(v, 3) for k, v in rates.items()},
            "writes_per_replica_per_tick": round(writes / 3 * TICK, 3),
            "reads_per_replica_per_tick": round(rates["range"] / 3 * TICK, 3),
        }, indent=1))


if __name__ == "__main__":
    main()
