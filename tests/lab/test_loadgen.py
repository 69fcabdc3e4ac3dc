"""The tests' load generator: open-loop requests split by the current shares (deterministic),
every outcome counted, the unsent rest shed, in-flight requests bounded, nothing left behind."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from failover.lab import Lab, LabOptions
from tests.lab.clock import FakeClock
from tests.loadgen import (
    ClusterCounts,
    LoadGenerator,
    LoadGeneratorError,
    LoadSnapshot,
    SharesFile,
    SmoothWeightedRoundRobin,
)

WITHIN = 10.0
"""Seconds any wait here may take at most: a bound for a broken run, never reached."""


def urls(lab: Lab) -> dict[str, str]:
    return {c.name: c.http_url for c in lab.clusters}


def no_tasks_left() -> bool:
    return not [t for t in asyncio.all_tasks() if t.get_name().startswith("loadgen")]


async def settle(load: LoadGenerator, shares: dict[str, float]) -> LoadSnapshot:
    """Stop sending (everything shed from now) and wait for every request to finish."""
    shares.clear()
    async with asyncio.timeout(WITHIN):
        return await load.wait(lambda s: s.total().in_flight == 0)


def test_round_robin_is_exact_and_smooth() -> None:
    """0.5/0.3/0.2 gives exactly 5/3/2 of every 10 picks, never three a's in a row; the
    rest of 1 comes out as None."""
    picker = SmoothWeightedRoundRobin()
    shares = {"a": 0.5, "b": 0.3, "c": 0.2}
    picks = [picker.pick(shares) for _ in range(100)]
    for start in range(0, 100, 10):
        assert Counter(picks[start:start + 10]) == {"a": 5, "b": 3, "c": 2}
    assert "aaa" not in "".join(str(p) for p in picks)
    quarter = SmoothWeightedRoundRobin()
    assert Counter(quarter.pick({"a": 0.25}) for _ in range(40)) == {None: 30, "a": 10}
    assert SmoothWeightedRoundRobin().pick({}) is None
    assert SmoothWeightedRoundRobin().pick({"a": float("nan"), "b": -1}) is None


def test_round_robin_follows_changed_shares() -> None:
    """New shares apply from the next pick; a cluster at 0 gets nothing."""
    picker = SmoothWeightedRoundRobin()
    for _ in range(7):
        picker.pick({"a": 0.5, "b": 0.5})
    after = Counter(picker.pick({"a": 0.0, "b": 1.0}) for _ in range(10))
    assert after == {"b": 10}


async def test_split_follows_shares(lab: Lab) -> None:
    """Requests go out as the shares say, every one answered 200 and counted by the lab."""
    shares = {"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2}
    expected = dict(shares)
    async with LoadGenerator(urls(lab), lambda: shares, rps=400) as load:
        async with asyncio.timeout(WITHIN):
            await load.wait(lambda s: s.total().sent >= 200)
        counts = await settle(load, shares)
    total = counts.total()
    assert total.sent >= 200
    assert (total.ok, total.errors, total.over_capacity, total.other) == (total.sent, 0, 0, 0)
    for cluster in lab.clusters:
        sent = counts.clusters[cluster.name].sent
        assert abs(sent - expected[cluster.name] * total.sent) <= 1.5, counts
        assert cluster.counters.http == sent
    assert counts.elapsed > 0
    assert no_tasks_left()


async def test_503s_are_counted() -> None:
    """Against a capacity of 5 in a second that does not end, 5 are served and the rest 503."""
    options = LabOptions(clusters=1, dns_base_port=0, http_base_port=0, capacity_rps=5,
                         control=None)
    async with Lab(options, clock=FakeClock()) as capacity_lab:
        shares = {"lab-1": 1.0}
        async with LoadGenerator(urls(capacity_lab), lambda: shares, rps=200) as load:
            async with asyncio.timeout(WITHIN):
                await load.wait(lambda s: s.total().sent >= 20)
            counts = await settle(load, shares)
        lab1 = counts.clusters["lab-1"]
        assert (lab1.ok, lab1.over_capacity) == (5, lab1.sent - 5)
        assert capacity_lab.clusters[0].counters.over_capacity == lab1.over_capacity


async def test_shares_below_1_shed_the_rest(lab: Lab) -> None:
    """With a share of 0.25 on one cluster, three arrivals in four are shed, none sent."""
    shares = {"lab-2": 0.25}
    async with LoadGenerator(urls(lab), lambda: shares, rps=400) as load:
        async with asyncio.timeout(WITHIN):
            counts = await load.wait(lambda s: s.clusters["lab-2"].sent >= 20)
    sent = counts.clusters["lab-2"].sent
    assert abs(counts.shed - 3 * sent) <= 3
    assert counts.clusters["lab-1"] == counts.clusters["lab-3"] == ClusterCounts()


@pytest.mark.lab_clusters(1)
async def test_hanging_target_is_bounded_and_left_cleanly(lab: Lab) -> None:
    """A target that never answers holds max_in_flight requests; the others are dropped and
    counted; on exit every request task is cancelled and awaited."""
    await lab.set_fault("lab-1", http="timeout")
    async with LoadGenerator(urls(lab), lambda: {"lab-1": 1.0}, rps=500, timeout=30,
                             max_in_flight=5) as load:
        async with asyncio.timeout(WITHIN):
            counts = await load.wait(lambda s: s.total().dropped >= 10)
    lab1 = counts.clusters["lab-1"]
    assert (lab1.sent, lab1.in_flight) == (5, 5)
    assert no_tasks_left()


@pytest.mark.lab_clusters(3)
async def test_errors_and_other_statuses(lab: Lab) -> None:
    """Refused connections and timeouts are errors; a 500 is an other status."""
    await lab.set_fault("lab-1", http="refuse")
    await lab.set_fault("lab-2", http="timeout")
    await lab.set_fault("lab-3", http="500")
    shares = {"lab-1": 0.34, "lab-2": 0.33, "lab-3": 0.33}
    async with LoadGenerator(urls(lab), lambda: shares, rps=200, timeout=0.2) as load:
        async with asyncio.timeout(WITHIN):
            await load.wait(lambda s: all(c.sent >= 3 for c in s.clusters.values()))
        counts = await settle(load, shares)
    one, two, three = (counts.clusters[name] for name in ("lab-1", "lab-2", "lab-3"))
    assert (one.errors, one.ok) == (one.sent, 0)
    assert (two.errors, two.ok) == (two.sent, 0)
    assert (three.other, three.ok) == (three.sent, 0)


async def test_reset_starts_the_counts_afresh(lab: Lab) -> None:
    """After a reset, counts start at 0 and answers to earlier requests are not counted."""
    await lab.set_fault("lab-1", http="slow", delay=0.1)
    shares = {"lab-1": 1.0}
    async with LoadGenerator(urls(lab), lambda: shares, rps=100) as load:
        async with asyncio.timeout(WITHIN):
            await load.wait(lambda s: s.total().sent >= 5)
        shares.clear()
        # Counted only now: the pacer may have sent more before this task resumed.
        sent = load.snapshot().total().sent
        load.reset()
        assert load.snapshot().total() == ClusterCounts()
        assert load.snapshot().shed == 0
        # The answers to the requests sent before the reset arrive 0.1 s later, well within
        # these 50 arrivals (0.5 s); none of them counts.
        async with asyncio.timeout(WITHIN):
            await load.wait(lambda s: s.shed >= 50)
        assert lab.clusters[0].counters.ok == sent
        assert load.snapshot().total() == ClusterCounts()


async def test_a_failing_shares_callable_fails_loudly(lab: Lab) -> None:
    """If ``shares`` raises, waiters and the exit raise LoadGeneratorError with the cause."""

    def broken() -> dict[str, float]:
        raise KeyError("no shares")

    async def wait_forever() -> None:
        async with LoadGenerator(urls(lab), broken, rps=100) as load:
            async with asyncio.timeout(WITHIN):
                await load.wait(lambda s: False)

    with pytest.raises(LoadGeneratorError) as info:
        await wait_forever()
    assert "no shares" in str(info.value)
    assert no_tasks_left()


async def test_a_failure_unseen_by_waiters_fails_the_exit(lab: Lab) -> None:
    """With nobody waiting, the failure comes out of the ``async with`` itself."""
    failed = asyncio.Event()

    def broken() -> dict[str, float]:
        failed.set()
        raise KeyError("no shares")

    async def run_until_failed() -> None:
        async with LoadGenerator(urls(lab), broken, rps=100):
            async with asyncio.timeout(WITHIN):
                await failed.wait()

    with pytest.raises(LoadGeneratorError, match="no shares"):
        await run_until_failed()
    assert no_tasks_left()


def test_bad_rate_or_timeout_is_refused() -> None:
    """rps and timeout must be positive numbers."""
    with pytest.raises(ValueError, match="rps must be"):
        LoadGenerator({}, dict, rps=0)
    with pytest.raises(ValueError, match="timeout must be"):
        LoadGenerator({}, dict, rps=1, timeout=float("nan"))
    with pytest.raises(ValueError, match="max_in_flight must be at least 1"):
        LoadGenerator({}, dict, rps=1, max_in_flight=0)


def write(path: Path, text: str) -> None:
    path.write_text(text)


def test_shares_file_keeps_the_last_good_read(tmp_path: Path) -> None:
    """Missing, half written or malformed: the last good shares stay; a new file is read."""
    path = tmp_path / "weights.json"
    shares = SharesFile(path)
    assert shares() == {}
    doc = {"version": 3, "clusters": {"lab-1": {"share": 0.6, "state": "healthy"},
                                      "lab-2": {"share": 0.4}}}
    write(path, json.dumps(doc))
    assert shares() == {"lab-1": 0.6, "lab-2": 0.4}
    assert shares.version == 3
    write(path, json.dumps(doc)[:25])  # as if read mid-write
    assert shares() == {"lab-1": 0.6, "lab-2": 0.4}
    write(path, json.dumps({"version": 4, "clusters": {"lab-1": {"share": "all"}}}))
    assert shares() == {"lab-1": 0.6, "lab-2": 0.4}
    path.unlink()
    assert shares() == {"lab-1": 0.6, "lab-2": 0.4}
    write(path, json.dumps({"version": 5, "clusters": {"lab-1": {"share": 1}}}))
    assert shares() == {"lab-1": 1.0}
    assert shares.version == 5


@pytest.fixture
async def weights_lab(tmp_path: Path) -> AsyncIterator[tuple[Lab, Path]]:
    options = LabOptions(clusters=2, dns_base_port=0, http_base_port=0, control=None)
    async with Lab(options) as running:
        yield running, tmp_path / "weights.json"


async def test_follows_the_weights_file(weights_lab: tuple[Lab, Path]) -> None:
    """Driven by SharesFile, traffic moves when the daemon's weights.json changes."""
    lab, path = weights_lab
    write(path, json.dumps({"version": 1, "clusters": {"lab-1": {"share": 1.0},
                                                       "lab-2": {"share": 0.0}}}))
    async with LoadGenerator(urls(lab), SharesFile(path), rps=300) as load:
        async with asyncio.timeout(WITHIN):
            await load.wait(lambda s: s.total().sent >= 20)
        write(path, json.dumps({"version": 2, "clusters": {"lab-1": {"share": 0.0},
                                                           "lab-2": {"share": 1.0}}}))
        load.reset()
        async with asyncio.timeout(WITHIN):
            counts = await load.wait(lambda s: s.total().sent >= 20)
    assert counts.clusters["lab-1"].sent == 0
    assert counts.clusters["lab-2"].sent >= 20
