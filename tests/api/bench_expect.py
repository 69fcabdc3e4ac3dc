"""Benchmark, not a test: event-loop lag on the admin listener under an ``Expect:
100-continue`` flood of unauthenticated calls. Run from the project root:

    python -m tests.api.bench_expect [CONNECTIONS] [ROUNDS] [expect|plain]

A separate process opens CONNECTIONS connections at once, each sending a call's head with
``Expect: 100-continue`` and a 16 KiB Content-Length and no token; told to continue, it sends
the body, as a flooding client would; then it reads the answer and closes. Printed: how late
a 5 ms timer on the listener's loop woke (max, p99), what the calls were answered, and how
long the round took. ``plain`` sends the same calls without Expect, head and body at once:
the cost of the burst itself, for comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from failover.api.admin import MAX_BODY, admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.token import Tokens
from failover.metrics import Metrics

CLIENT = r"""
import asyncio, sys
port, n, length, expect = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
head = (b"POST /v1/freeze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"%sContent-Length: %d\r\n\r\n" % (
            b"Expect: 100-continue\r\n" if expect == "expect" else b"", length))
async def one():
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head if expect == "expect" else head + b"x" * length)
        first = await reader.readuntil(b"\r\n\r\n")
        if first.startswith(b"HTTP/1.1 100"):
            writer.write(b"x" * length)
            await writer.drain()
            final = await reader.readuntil(b"\r\n\r\n")
            return b"100 then " + final[9:12]
        return first[9:12]
    except Exception as exc:
        return type(exc).__name__.encode()
    finally:
        writer.close()
async def main():
    results = await asyncio.gather(*(one() for _ in range(n)))
    for r in results: print(r.decode())
asyncio.run(main())
"""


class _Target:
    def __init__(self) -> None:
        self.metrics = Metrics(CollectorRegistry())

    def has_cluster(self, name: str) -> bool:
        return True

    def base_weights(self) -> dict[str, float]:
        return {"a": 1.0}

    def drained_clusters(self) -> set[str]:
        return set()

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        return {}

    def undrain(self, name: str) -> bool:
        return True

    def freeze(self, reason: str) -> dict[str, Any]:
        return {}

    def unfreeze(self) -> bool:
        return True

    async def persist(self) -> bool:
        return True

    async def reload(self) -> bool:
        return True

    def reload_error(self) -> str | None:
        return None


async def main(connections: int, rounds: int, mode: str) -> None:
    audit = AuditLog(Path(tempfile.mkdtemp()) / "audit.jsonl")
    listener = Listener("admin", admin_app(_Target(), Tokens(("t",)), audit), "127.0.0.1:0")
    serving = asyncio.create_task(listener.serve())
    await listener.ready.wait()
    port = listener.bound[0].rsplit(":", 1)[1]
    loop = asyncio.get_running_loop()
    for round_ in range(rounds):
        lags: list[float] = []
        done = asyncio.Event()

        async def ticker(lags: list[float] = lags, done: asyncio.Event = done) -> None:
            while not done.is_set():
                start = loop.time()
                await asyncio.sleep(0.005)
                lags.append(loop.time() - start - 0.005)

        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, port, str(connections), str(MAX_BODY), mode,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await client.communicate()
        took = time.perf_counter() - started
        done.set()
        await ticking
        answers = Counter(out.decode().split("\n")[:-1])
        lags.sort()
        print(f"{mode} round {round_ + 1}: {connections} calls in {took:.2f}s, answers "
              f"{dict(answers)}; loop lag max {lags[-1] * 1e3:.1f} ms, "
              f"p99 {lags[int(len(lags) * 0.99)] * 1e3:.1f} ms, "
              f"median {statistics.median(lags) * 1e3:.2f} ms")
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 3,
                     sys.argv[3] if len(sys.argv) > 3 else "expect"))
