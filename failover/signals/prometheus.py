"""Live load signals from a Prometheus HTTP API: one round of instant queries every interval.

Never on the probe path: the source has its own HTTP session, its own timeout per query
and its own query budget, and nothing it meets (Prometheus down, a bad reply, a bug in a
round) stops its loop or reaches its caller. What it cannot measure it reports as missing,
never as a guess: each value keeps the time it describes, a value whose series vanished
becomes missing, and a value whose query fails keeps its old time, so it ages into
staleness where the planner judges it.

A query with ``{cluster}`` in it runs once per cluster with the name put in; one without
runs once per round and each series is matched to a cluster by its ``cluster_label``
label; ``shared`` queries run once per round as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import aiohttp

from failover import __version__
from failover.config.signals import CLUSTER_PLACEHOLDER, PrometheusSignals, SignalQueries
from failover.model import Signals
from failover.ratelimit import TokenBucket
from failover.signals.api import (
    MAX_REPLY_BYTES,
    QUERY_PATH,
    QueryFailed,
    Reply,
    describe,
    parse_reply,
    read_reply,
)
from failover.signals.metrics import SIGNAL_NAMES, Result, SignalMetrics, SignalName
from failover.signals.values import Kind, Query, Value, sample, values_of

log = logging.getLogger(__name__)

SOURCE = "prometheus"
"""``Signals.source`` of every snapshot this module gives."""
MAX_IN_FLIGHT = 4
"""Queries sent at once: enough that one slow query does not hold up a round, few enough
that a round never lands on Prometheus as a burst of parallel evaluations."""

def _running_loop_time() -> float:
    return asyncio.get_running_loop().time()


def new_session() -> aiohttp.ClientSession:
    """The source's own session, apart from the probes': call it inside the running loop."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT),
        cookie_jar=aiohttp.DummyCookieJar(),
        # HTTP(S)_PROXY in the daemon's environment must not route queries elsewhere: the
        # configured URL says where Prometheus is.
        trust_env=False,
        # Each query has its own deadline (``timeout``); no second, different one here.
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"User-Agent": f"failover/{__version__} signals",
                 "Accept": "application/json"},
    )


class PrometheusSource:
    """Per-cluster and shared load signals, refreshed by one round of queries every interval.

    ``clusters()`` names the clusters to query in a round, most important first: when the
    budget cannot cover every query, the ones for the clusters named last wait for a later
    round. ``loop_time`` is the loop clock (``measured_at``, the budget, the round deadline)
    and ``wall_time`` the clock Prometheus's timestamps are compared with; both are the
    real ones unless a test fakes them (a fake loop clock that does not move must come with
    ``interval == timeout``, so that a round never waits for a token).
    """

    def __init__(
        self,
        spec: PrometheusSignals,
        clusters: Callable[[], Sequence[str]],
        metrics: SignalMetrics,
        *,
        loop_time: Callable[[], float] | None = None,
        wall_time: Callable[[], float] | None = None,
    ) -> None:
        self._spec = spec
        self._clusters = clusters
        self._metrics = metrics
        self._loop_time = loop_time or _running_loop_time
        self._wall_time = wall_time or time.time
        self._url = spec.url.rstrip("/") + QUERY_PATH
        self._order: list[str] = []
        self._values: dict[str, dict[SignalName, Value]] = {}
        self._shared: dict[SignalName, Value] = {}
        # Created at the first round: the default loop clock needs a running loop.
        self._bucket: TokenBucket | None = None
        self._trouble: dict[tuple[Kind, str, SignalName], Result] = {}
        """Queries failing (or empty) now, by who and signal: logged when this changes."""
        self._starved = False
        """The budget skipped queries in the last round: warned once per episode."""
        self._session: aiohttp.ClientSession | None = None
        self._round_done = asyncio.Event()

    @property
    def spec(self) -> PrometheusSignals:
        return self._spec

    def signals(self) -> Signals:
        """The latest snapshot; clusters with no value at all are left out (missing)."""
        clusters = {}
        for name in self._order:
            found = sample(self._values.get(name, {}))
            if found is not None:
                clusters[name] = found
        return Signals(clusters=clusters, shared=sample(self._shared),
                       shared_expected=self._spec.shared is not None, source=SOURCE)

    async def next_round(self) -> Signals:
        """Wait for the end of the round under way (or of the next one), then the snapshot."""
        await self._round_done.wait()
        return self.signals()

    async def run(self) -> None:
        """A round every ``interval`` until cancelled; a failed round is logged and counted,
        and the next one runs on time."""
        interval = self._spec.interval
        async with new_session() as session:
            self._session = session
            try:
                due = self._loop_time()
                while True:
                    try:
                        await self.run_round()
                    except Exception:
                        self._metrics.errors.inc()
                        log.exception("signal round failed unexpectedly; the next one runs in "
                                      "%gs", interval)
                    due += interval
                    now = self._loop_time()
                    # After a stall (suspend, overload), go on from now rather than run a
                    # burst of rounds to catch up.
                    due = max(due, now)
                    await asyncio.sleep(due - now)
            finally:
                self._session = None

    async def run_round(self) -> None:
        """One round: each query due, in order of importance, as far as the budget allows.

        Inside `run` it uses the source's session; called on its own (tests), it opens one
        for the round.
        """
        try:
            if self._session is not None:
                await self._round(self._session)
            else:
                async with new_session() as session:
                    await self._round(session)
        finally:
            done, self._round_done = self._round_done, asyncio.Event()
            done.set()

    def _plan(self, clusters: Sequence[str]) -> list[Query]:
        """Every query of a round, most important first: the shared dependency's and the
        fleet-wide ones (each covers every cluster), then per cluster in the given order."""
        plan: list[Query] = []
        if self._spec.shared is not None:
            plan += [Query("shared", signal, expr)
                     for signal, expr in _queries(self._spec.shared)]
        per_cluster = []
        for signal, expr in _queries(self._spec.queries):
            if CLUSTER_PLACEHOLDER in expr:
                per_cluster.append((signal, expr))
            else:
                plan.append(Query("fleet", signal, expr))
        for name in clusters:
            # Plain replacement, never str.format: PromQL has braces of its own.
            plan += [Query("cluster", signal, expr.replace(CLUSTER_PLACEHOLDER, name), name)
                     for signal, expr in per_cluster]
        return plan

    async def _round(self, session: aiohttp.ClientSession) -> None:
        start = self._loop_time()
        # A query started by then ends, answered or timed out, before the next round is due.
        deadline = start + self._spec.interval - self._spec.timeout
        clusters = list(dict.fromkeys(self._clusters()))
        self._order = clusters
        kept = set(clusters)
        for gone in self._values.keys() - kept:
            del self._values[gone]
        self._trouble = {where: result for where, result in self._trouble.items()
                         if where[0] != "cluster" or where[1] in kept}
        plan = self._plan(clusters)
        if self._bucket is None:
            self._bucket = TokenBucket(self._spec.max_queries_per_second, self._loop_time)
        bucket = self._bucket
        skipped: list[Query] = []
        # Per round: a slot lost to a cancellation cannot shrink a later round's.
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        async with asyncio.TaskGroup() as tasks:
            for index, query in enumerate(plan):
                # A slot first, then the token: the query is sent as it takes the token,
                # so the bucket's bound holds at Prometheus, not only here.
                await slots.acquire()
                if not await self._admit(bucket, deadline):
                    skipped = plan[index:]
                    break
                tasks.create_task(self._guarded(session, query, clusters, slots),
                                  name=f"signal query {query.key} {query.signal}")
        for query in skipped:
            self._metrics.queries.labels(query.target, query.signal, "skipped").inc()
        self._note_budget(skipped, len(plan))

    async def _admit(self, bucket: TokenBucket, deadline: float) -> bool:
        """Take a token, waiting for one while the round's deadline allows; False if not."""
        while not bucket.available():
            wait = bucket.seconds_until_available()
            if self._loop_time() + wait > deadline:
                return False
            await asyncio.sleep(wait)  # the budget's pace, not a synchronisation
        bucket.take()
        return True

    def _note_budget(self, skipped: Sequence[Query], planned: int) -> None:
        if skipped and not self._starved:
            first = skipped[0]
            log.warning(
                "signal queries over budget: %d of %d skipped this round, from %s %s on "
                "(max_queries_per_second %g; counted as failover_signal_queries_total"
                "{result=\"skipped\"}); they run in a later round, and their values age",
                len(skipped), planned, first.key, first.signal,
                self._spec.max_queries_per_second)
        elif not skipped and self._starved:
            log.info("signal queries within budget again: none skipped this round")
        self._starved = bool(skipped)

    async def _guarded(self, session: aiohttp.ClientSession, query: Query,
                       clusters: Sequence[str], slots: asyncio.Semaphore) -> None:
        """One query, counted and applied; it never raises but for a cancellation."""
        try:
            await self._query(session, query, clusters)
        except Exception:
            # _query classifies every failure it expects; reaching here is a bug, logged
            # with its traceback for the developer, and the round goes on.
            self._metrics.errors.inc()
            self._metrics.queries.labels(query.target, query.signal, "error").inc()
            log.exception("signal query %s for %s raised unexpectedly", query.signal,
                          query.key, extra={"signal": query.signal, "target": query.key})
        finally:
            slots.release()

    async def _query(self, session: aiohttp.ClientSession, query: Query,
                     clusters: Sequence[str]) -> None:
        started = asyncio.get_running_loop().time()
        try:
            reply = await self._fetch(session, query.expr)
            updates, notes = values_of(
                query, reply, clusters, loop_now=self._loop_time(), wall_now=self._wall_time(),
                lag=self._spec.lag, cluster_label=self._spec.cluster_label)
        except QueryFailed as failed:
            self._finish(query, failed.result, failed.detail, started)
            return
        result: Result = "ok" if any(v is not None for v in updates.values()) else "empty"
        self._apply(query, updates)
        if result == "ok":
            self._metrics.last_success.labels(query.target).set(self._wall_time())
            if notes:  # NaN for an idle cluster's error ratio is common: no warning
                log.debug("signal query %s for %s: %s", query.signal, query.key,
                          "; ".join(notes), extra={"signal": query.signal, "target": query.key})
        self._finish(query, result, "; ".join(notes) or "no series", started)

    async def _fetch(self, session: aiohttp.ClientSession, expr: str) -> Reply:
        timeout = self._spec.timeout
        try:
            async with asyncio.timeout(timeout), session.get(
                    self._url, params={"query": expr}) as response:
                body = await read_reply(response, MAX_REPLY_BYTES)
                status = response.status
        except TimeoutError as exc:
            # Also aiohttp's own timeouts (ServerTimeoutError is a TimeoutError).
            raise QueryFailed("timeout", f"no reply within {timeout:g}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise QueryFailed("error", describe(exc)) from exc
        return parse_reply(status, body)

    def _apply(self, query: Query, updates: Mapping[str | None, Value | None]) -> None:
        for key, new in updates.items():
            values = self._shared if key is None else self._values.setdefault(key, {})
            if new is None:
                # The series is gone (a failed scrape marks it stale): the value is
                # missing now, not its last reading kept forever.
                values.pop(query.signal, None)
            else:
                values[query.signal] = new

    def _finish(self, query: Query, result: Result, detail: str, started: float) -> None:
        self._metrics.queries.labels(query.target, query.signal, result).inc()
        self._metrics.query_duration.labels(query.target).observe(
            asyncio.get_running_loop().time() - started)
        where = (query.kind, query.cluster or "", query.signal)
        extra = {"signal": query.signal, "target": query.key, "result": result}
        before = self._trouble.get(where)
        if result == "ok":
            if before is not None:
                del self._trouble[where]
                log.info("signal query %s for %s answers again", query.signal, query.key,
                         extra=extra)
            return
        if before == result:
            return  # said once when it started; the counter has every occurrence
        self._trouble[where] = result
        level = logging.INFO if result == "empty" else logging.WARNING
        log.log(level, "signal query %s for %s: %s (%s); its value is %s; query: %s",
                query.signal, query.key, result, detail,
                "missing" if result == "empty" else "kept and ages", query.expr, extra=extra)


def _queries(queries: SignalQueries) -> list[tuple[SignalName, str]]:
    found = ((signal, getattr(queries, signal)) for signal in SIGNAL_NAMES)
    return [(signal, expr) for signal, expr in found if expr is not None]

