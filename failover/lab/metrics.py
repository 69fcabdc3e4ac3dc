"""The lab's load as Prometheus series, read from the clusters' state at scrape time.

A custom collector rather than metric objects: the HTTP services keep plain counters on
their hot path, and a scrape turns them, and the last complete window, into series. One
registry per control app, so several labs in one process (tests) never share series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from failover.lab.lab import Lab


class LabCollector(Collector):
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "lab_requests", "HTTP requests received, health checks included, whatever the "
            "answer.", labels=["cluster"])
        responses = CounterMetricFamily(
            "lab_responses", "HTTP answers by status: 200 served, 500 an injected fault, "
            "503 over capacity.", labels=["cluster", "code"])
        over = CounterMetricFamily(
            "lab_over_capacity", "HTTP requests answered 503 because they were beyond the "
            "cluster's effective capacity.", labels=["cluster"])
        dns = CounterMetricFamily(
            "lab_dns_queries", "DNS queries received, by transport.",
            labels=["cluster", "transport"])
        capacity = GaugeMetricFamily(
            "lab_capacity_rps", "Requests/s (health checks included) the cluster answers "
            "now before 503s: its maximum times its warmth.", labels=["cluster"])
        capacity_max = GaugeMetricFamily(
            "lab_capacity_max_rps", "Requests/s the cluster serves when fully warm.",
            labels=["cluster"])
        warmth = GaugeMetricFamily(
            "lab_warmth", "Fraction of its maximum capacity the cluster serves now: the cold "
            "factor after a pause in traffic, growing to 1 with the requests it serves.",
            labels=["cluster"])
        utilization = GaugeMetricFamily(
            "lab_utilization", "Requests offered / effective capacity over the last complete "
            "second; above 1 means overloaded.", labels=["cluster"])
        offered = GaugeMetricFamily(
            "lab_offered_rps", "HTTP requests received over the last complete second, health "
            "checks included.", labels=["cluster"])
        served = GaugeMetricFamily(
            "lab_served_rps", "HTTP requests answered 200 over the last complete second, "
            "health checks included.", labels=["cluster"])
        for cluster in self.lab.clusters:
            name, counters, load = cluster.name, cluster.counters, cluster.http.load
            now = cluster.http.clock()
            window = load.last_window(now)
            requests.add_metric([name], counters.http)
            for code, count in (("200", counters.ok), ("500", counters.failed),
                                ("503", counters.over_capacity)):
                responses.add_metric([name, code], count)
            over.add_metric([name], counters.over_capacity)
            dns.add_metric([name, "udp"], counters.dns_udp)
            dns.add_metric([name, "tcp"], counters.dns_tcp)
            offered.add_metric([name], window.offered)
            served.add_metric([name], window.served)
            level = load.warmth_level(now)
            if load.capacity_rps is not None and level is not None:
                capacity.add_metric([name], load.capacity_rps * level)
                capacity_max.add_metric([name], load.capacity_rps)
                warmth.add_metric([name], level)
            if window.utilization is not None:
                utilization.add_metric([name], window.utilization)
        yield from (requests, responses, over, dns, capacity, capacity_max, warmth,
                    utilization, offered, served)


def lab_registry(lab: Lab) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LabCollector(lab))
    return registry
