"""The provisioning hook: when planned capacity has fallen short for ``provisioning.after``,
POST the shortfall to a webhook that can bring new clusters up (they then register
themselves through the admin API and ramp in through the recovery gate).

One call in flight at most, one per ``cooldown`` at most, each retried with backoff on
errors that may pass; every call is counted and logged. Nothing here feeds back into
planning: a hook that hangs or fails costs the planner nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import Counter, Gauge
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from failover import __version__
from failover.config import Config
from failover.config.provisioning import Provisioning
from failover.metrics import Metrics
from failover.model import Plan
from failover.planner.shortfall import Shortfall, ShortfallWatch, shortfall

log = logging.getLogger("failover.provisioning")

RESULTS = ("ok", "refused", "failed")
BACKOFF = 1.0
"""Seconds before the first retry; doubling after that."""


class _Passing(Exception):
    """An answer worth trying again: 429 or 5xx."""


class _Refused(Exception):
    """An answer not worth trying again: any other 4xx (or 3xx: redirects are not followed)."""


class HookMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.calls = Counter(
            "failover_provisioning_calls", "Provisioning webhook calls, by result (after "
            "retries): ok, refused (a 4xx), failed.", ["result"], registry=metrics.registry)
        self.attempts = Counter(
            "failover_provisioning_attempts", "Provisioning webhook attempts, retries "
            "included.", registry=metrics.registry)
        self.shortfall = Gauge(
            "failover_provisioning_shortfall_rps", "Demand planned capacity cannot take "
            "within headroom, now (0 when nothing is short).", registry=metrics.registry)
        for result in RESULTS:
            self.calls.labels(result)


class ProvisioningHook:
    def __init__(self, config: Callable[[], Config], plan: Callable[[], Plan | None],
                 metrics: Metrics, leading: Callable[[], bool] = lambda: True) -> None:
        """``leading``: whether this replica plans (distributed mode): the others follow
        its plan, and N replicas calling the hook would ask for N times the capacity."""
        self._config = config
        self._plan = plan
        self._leading = leading
        self._metrics = HookMetrics(metrics)
        self._watch = ShortfallWatch()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        calling: asyncio.Task[None] | None = None
        async with asyncio.TaskGroup() as calls:
            while True:
                config = self._config()
                await asyncio.sleep(config.policy.tick)
                found = self.due(config, loop.time())
                if found is None or (calling is not None and not calling.done()):
                    continue
                hook, short, lasted = found
                self._watch.called(loop.time())
                calling = calls.create_task(self._call(hook, short, lasted),
                                            name="provisioning call")

    def due(self, config: Config, now: float) -> tuple[Provisioning, Shortfall, float] | None:
        """What to ask for now: a shortfall that has lasted ``after``, past the cooldown."""
        short = shortfall(self._plan(), config.clusters, config.policy, config.demand_rps)
        self._metrics.shortfall.set(0.0 if short is None else short.rps)
        hook = config.provisioning
        if hook is None or not self._leading():
            short = None
        if short is not None and self._watch.since is None:
            log.warning("capacity short by %.0f rps (at capacity: %s)", short.rps,
                        ", ".join(short.at_capacity) or "none")
        lasted = self._watch.due(short, hook, now)
        if lasted is None or hook is None or short is None:
            return None
        return hook, short, lasted

    async def _call(self, hook: Provisioning, short: Shortfall, lasted: float) -> None:
        body = {"shortfall_rps": round(short.rps, 3), "at_capacity": list(short.at_capacity),
                "plan_version": short.plan_version, "short_for_s": round(lasted, 1),
                "demand_rps": self._config().demand_rps}
        url = str(hook.webhook.url)
        try:
            headers = await _headers(hook.webhook.token_file)
            retrying = AsyncRetrying(
                retry=retry_if_exception_type((_Passing, aiohttp.ClientError, TimeoutError)),
                stop=stop_after_attempt(hook.attempts),
                wait=wait_exponential(multiplier=BACKOFF, max=min(60.0, hook.cooldown / 4)),
                reraise=True)
            async for attempt in retrying:
                with attempt:
                    self._metrics.attempts.inc()
                    status = await _post(url, body, headers, hook.webhook.timeout)
        except _Refused as exc:
            self._metrics.calls.labels("refused").inc()
            log.error("provisioning webhook %s refused the call: %s; next try after the "
                      "cooldown (%gs)", url, exc, hook.cooldown)
            return
        except (_Passing, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._metrics.calls.labels("failed").inc()
            log.error("provisioning webhook %s failed after %d attempts: %s; next try after "
                      "the cooldown (%gs)", url, hook.attempts, _describe(exc), hook.cooldown)
            return
        self._metrics.calls.labels("ok").inc()
        log.warning("provisioning webhook %s called (HTTP %d): short by %.0f rps, at "
                    "capacity: %s", url, status, short.rps,
                    ", ".join(short.at_capacity) or "none")


async def _headers(token_file: Path | None) -> dict[str, str]:
    headers = {"User-Agent": f"failover/{__version__}"}
    if token_file is not None:
        # Read at each call, so that a rotated token is used without a reload.
        token = (await asyncio.to_thread(token_file.read_text, encoding="utf-8")).strip()
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def _post(url: str, body: dict[str, Any], headers: dict[str, str],
                within: float) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session, \
            session.post(url, json=body, headers=headers, allow_redirects=False) as response:
        if response.status == 429 or response.status >= 500:
            msg = f"HTTP {response.status}"
            raise _Passing(msg)
        if not 200 <= response.status < 300:
            msg = f"HTTP {response.status}: {(await response.text())[:200]}"
            raise _Refused(msg)
        return response.status


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
