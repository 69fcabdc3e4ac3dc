"""What a round of queries makes of Prometheus's replies: per-cluster and fleet-wide
queries, shared ones, clamping, missing values, and the time each value describes."""

from __future__ import annotations

import pytest

from failover.model import Sample
from tests.signals.conftest import LOOP, WALL, FakePrometheus, Rig, one, vector


async def test_cluster_placeholder_is_replaced_literally(rig: Rig, fake: FakePrometheus) -> None:
    """{cluster} becomes each name, PromQL's own braces untouched, one query per cluster."""
    query = 'sum(rate(errors{cluster="{cluster}",code=~"5.."}[1m])) / 2'
    fake.replies = {query.replace("{cluster}", name): one(value)
                    for name, value in (("a", "0.1"), ("b", "0.2"), ("c", "0.3"))}
    source = rig.source({"error_ratio": query})
    await source.run_round()
    assert fake.queries == [
        'sum(rate(errors{cluster="a",code=~"5.."}[1m])) / 2',
        'sum(rate(errors{cluster="b",code=~"5.."}[1m])) / 2',
        'sum(rate(errors{cluster="c",code=~"5.."}[1m])) / 2',
    ]
    got = source.signals()
    assert {name: s.error_ratio for name, s in got.clusters.items()} == {
        "a": 0.1, "b": 0.2, "c": 0.3}
    assert got.source == "prometheus"
    assert rig.count("ok", signal="error_ratio") == 3


async def test_fleet_query_runs_once_and_maps_series_by_label(
        rig: Rig, fake: FakePrometheus) -> None:
    """A query without {cluster} runs once; each series goes to the cluster its label names,
    series of unknown clusters or without the label are ignored, an absent cluster is
    missing."""
    query = "max by (site) (load)"
    fake.replies = {query: vector(({"site": "a"}, "0.4"), ({"site": "b", "x": "y"}, "0.6"),
                                  ({"site": "elsewhere"}, "0.9"), ({}, "0.5"))}
    source = rig.source({"utilization": query}, cluster_label="site")
    await source.run_round()
    assert fake.queries == [query]
    got = source.signals()
    assert {name: s.utilization for name, s in got.clusters.items()} == {"a": 0.4, "b": 0.6}
    assert "c" not in got.clusters
    assert rig.count("ok") == 1


async def test_fleet_query_with_two_series_for_a_cluster_is_refused(
        rig: Rig, fake: FakePrometheus) -> None:
    """Two series naming one cluster (a query not aggregated by cluster): none of it is used."""
    fake.replies = {"load": vector(({"cluster": "a"}, "0.4"))}
    source = rig.source({"utilization": "load"})
    await source.run_round()
    fake.replies = {"load": vector(({"cluster": "a", "i": "1"}, "0.1"),
                                   ({"cluster": "a", "i": "2"}, "0.9"),
                                   ({"cluster": "b"}, "0.3"))}
    await source.run_round()
    assert rig.count("bad_reply") == 1
    assert {n: s.utilization for n, s in source.signals().clusters.items()} == {"a": 0.4}


async def test_several_series_for_one_cluster_query_are_refused(
        rig: Rig, fake: FakePrometheus) -> None:
    """A {cluster} query giving more than one series is misconfigured: none of it is used."""
    rig.clusters = ["a"]
    query = 'load{cluster="{cluster}"}'
    fake.replies = {'load{cluster="a"}': vector(({"i": "1"}, "0.2"), ({"i": "2"}, "0.3"))}
    source = rig.source({"utilization": query})
    await source.run_round()
    assert source.signals().clusters == {}
    assert rig.count("bad_reply") == 1
    assert rig.count("ok") == 0


async def test_shared_queries_run_once_per_round(rig: Rig, fake: FakePrometheus) -> None:
    """Shared queries run once, as written, and fill ``shared``; it is expected once
    configured."""
    fake.replies = {"db_load": one("0.7"), "db_errors": one("0.01")}
    source = rig.source({"utilization": "load"},
                        shared={"utilization": "db_load", "error_ratio": "db_errors"})
    await source.run_round()
    assert fake.queries[:2] == ["db_load", "db_errors"], "shared queries go first"
    got = source.signals()
    assert got.shared == Sample(measured_at=LOOP - 10, utilization=0.7, error_ratio=0.01)
    assert got.shared_expected
    assert rig.count("ok", target="shared") == 1
    assert rig.count("ok", target="shared", signal="error_ratio") == 1
    assert rig.registry.get_sample_value(
        "failover_signal_last_success_timestamp_seconds", {"target": "shared"}) == WALL


async def test_without_shared_queries_shared_is_not_expected(
        rig: Rig, fake: FakePrometheus) -> None:
    """No shared queries: no shared sample, and none expected."""
    source = rig.source({"utilization": "load"})
    await source.run_round()
    got = source.signals()
    assert (got.shared, got.shared_expected) == (None, False)


async def test_scalar_reply_is_one_value(rig: Rig, fake: FakePrometheus) -> None:
    """A scalar answers a per-cluster or shared query; it cannot answer a fleet-wide one."""
    rig.clusters = ["a"]
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [WALL, "0.5"]}}
    fake.replies = {'u{cluster="a"}': scalar, "shared": scalar, "fleet": scalar}
    source = rig.source({"utilization": 'u{cluster="{cluster}"}', "error_ratio": "fleet"},
                        shared={"utilization": "shared"})
    await source.run_round()
    got = source.signals()
    assert got.clusters["a"].utilization == 0.5
    assert got.clusters["a"].error_ratio is None
    assert got.shared is not None
    assert got.shared.utilization == 0.5
    assert rig.count("bad_reply", signal="error_ratio") == 1


@pytest.mark.parametrize(("signal", "text", "expected"), [
    ("utilization", "1.7", 1.0),       # over capacity: saturated
    ("utilization", "-0.2", 0.0),
    ("utilization", "0.35", 0.35),
    ("error_ratio", "3", 1.0),
    ("error_ratio", "-1e-9", 0.0),
    ("latency_ratio", "-1", 0.0),
    ("latency_ratio", "3.5", 3.5),     # no upper bound: inflation is inflation
])
async def test_values_are_clamped(rig: Rig, fake: FakePrometheus, signal: str, text: str,
                                  expected: float) -> None:
    """utilization and error_ratio are read into 0..1, latency_ratio into >= 0."""
    rig.clusters = ["a"]
    fake.replies = {"q": vector(({"cluster": "a"}, text))}
    source = rig.source({signal: "q"})
    await source.run_round()
    assert getattr(source.signals().clusters["a"], signal) == expected


@pytest.mark.parametrize("text", ["NaN", "+Inf", "-Inf", "twelve", ""])
async def test_no_number_is_a_missing_value(rig: Rig, fake: FakePrometheus, text: str) -> None:
    """NaN (0/0: no requests), infinities and unreadable values are missing, never 0 or 1."""
    rig.clusters = ["a"]
    fake.replies = {'q{cluster="a"}': one(text), "fleet": vector(({"cluster": "a"}, text))}
    source = rig.source({"utilization": 'q{cluster="{cluster}"}', "error_ratio": "fleet"})
    await source.run_round()
    assert source.signals().clusters == {}
    assert rig.count("empty") == 1
    assert rig.count("empty", signal="error_ratio") == 1


async def test_measured_at_is_evaluation_time_minus_lag_on_the_loop_clock(
        rig: Rig, fake: FakePrometheus) -> None:
    """Unix evaluation times become loop-clock instants, less the configured lag, and a
    sample is as old as its oldest part."""
    rig.clusters = ["a"]
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"), ts=WALL - 2.5),
                    "e": vector(({"cluster": "a"}, "0.01"), ts=WALL - 4.0),
                    "l": vector(({"cluster": "a"}, "1.1"), ts=WALL + 30)}  # clock ahead
    source = rig.source({"utilization": "u", "error_ratio": "e", "latency_ratio": "l"},
                        lag=7.0)
    await source.run_round()
    sample = source.signals().clusters["a"]
    assert sample == Sample(measured_at=LOOP - 4.0 - 7.0, utilization=0.5, error_ratio=0.01,
                            latency_ratio=1.1)

    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"), ts=WALL + 8),
                    "e": vector(({"cluster": "a"}, "0.01"), ts=WALL + 8),
                    "l": vector(({"cluster": "a"}, "1.1"), ts=WALL + 30)}
    rig.advance(10)
    await source.run_round()
    # A Prometheus clock ahead of ours dates nothing in the future: at most now - lag.
    assert source.signals().clusters["a"].measured_at == LOOP + 10 - 2 - 7.0


async def test_vanished_series_become_missing(rig: Rig, fake: FakePrometheus) -> None:
    """A value no longer returned (its series went stale) is missing, not kept forever."""
    rig.clusters = ["a", "b"]
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"), ({"cluster": "b"}, "0.6")),
                    'e{cluster="a"}': one("0.01"), 'e{cluster="b"}': one("0.02")}
    source = rig.source({"utilization": "u", "error_ratio": 'e{cluster="{cluster}"}'})
    await source.run_round()
    assert set(source.signals().clusters) == {"a", "b"}

    fake.replies = {"u": vector(({"cluster": "a"}, "0.5")), 'e{cluster="a"}': one("0.01"),
                    'e{cluster="b"}': vector()}
    await source.run_round()
    assert set(source.signals().clusters) == {"a"}
    assert rig.count("empty", signal="error_ratio") == 1


async def test_a_sample_shows_what_is_left(rig: Rig, fake: FakePrometheus) -> None:
    """One signal gone and another present: the sample carries the present one only, dated
    by it."""
    rig.clusters = ["a"]
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5")),
                    "e": vector(({"cluster": "a"}, "0.01"), ts=WALL - 5)}
    source = rig.source({"utilization": "u", "error_ratio": "e"})
    await source.run_round()
    assert source.signals().clusters["a"].measured_at == LOOP - 5 - 10
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"))}
    await source.run_round()
    assert source.signals().clusters["a"] == Sample(measured_at=LOOP - 10, utilization=0.5)


async def test_unconfigured_signals_are_none(rig: Rig, fake: FakePrometheus) -> None:
    """A signal without a query is None in every sample."""
    rig.clusters = ["a"]
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"))}
    source = rig.source({"utilization": "u"})
    await source.run_round()
    sample = source.signals().clusters["a"]
    assert (sample.error_ratio, sample.latency_ratio) == (None, None)
    assert fake.queries == ["u"]


async def test_clusters_dropped_from_the_list_are_forgotten(
        rig: Rig, fake: FakePrometheus) -> None:
    """A cluster no longer named by ``clusters()`` loses its values; the snapshot follows the
    given order."""
    fake.replies = {"u": vector(*(({"cluster": n}, "0.5") for n in ("a", "b", "c")))}
    source = rig.source({"utilization": "u"})
    await source.run_round()
    assert list(source.signals().clusters) == ["a", "b", "c"]
    rig.clusters = ["c", "a"]
    fake.replies = {}  # nothing at all this round: every value is missing
    await source.run_round()
    assert list(source.signals().clusters) == []
    fake.replies = {"u": vector(*(({"cluster": n}, "0.5") for n in ("a", "b", "c")))}
    await source.run_round()
    assert list(source.signals().clusters) == ["c", "a"]


async def test_metric_labels_never_carry_names_or_queries(
        rig: Rig, fake: FakePrometheus) -> None:
    """Whatever the clusters and queries, the labels of the source's metrics are a fixed set."""
    rig.clusters = [f"cluster-{i}" for i in range(20)]
    source = rig.source({"utilization": 'u{cluster="{cluster}"}', "error_ratio": "e"},
                        shared={"latency_ratio": "s"})
    await source.run_round()
    allowed = {"cluster", "shared", "utilization", "error_ratio", "latency_ratio", "ok",
               "empty", "error", "timeout", "bad_reply", "skipped"}
    for family in rig.registry.collect():
        for sample in family.samples:
            values = {v for k, v in sample.labels.items() if k != "le"}
            assert values <= allowed, (sample.name, sample.labels)
