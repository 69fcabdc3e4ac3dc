"""Simulated clusters on loopback: a DNS server and an HTTP service each, with fault injection
and a capacity model that starts cold and warms with the traffic it serves."""

from failover.lab.faults import Counters, DnsFault, Faults, HttpFault
from failover.lab.lab import (
    BadClusterName,
    ClusterExists,
    ClusterStartError,
    Lab,
    LabCluster,
    LabOptions,
    LabOptionsError,
    NoCapacity,
    UnknownCluster,
    answer_address,
)

__all__ = ["BadClusterName", "ClusterExists", "ClusterStartError", "Counters", "DnsFault",
           "Faults", "HttpFault", "Lab", "LabCluster", "LabOptions", "LabOptionsError",
           "NoCapacity", "UnknownCluster", "answer_address"]
