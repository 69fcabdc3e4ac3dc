"""Simulated clusters on loopback: a DNS server and an HTTP service each, with fault injection."""

from failover.lab.faults import Counters, DnsFault, Faults, HttpFault
from failover.lab.lab import Lab, LabCluster, LabOptions, UnknownCluster, answer_address

__all__ = ["Counters", "DnsFault", "Faults", "HttpFault", "Lab", "LabCluster", "LabOptions",
           "UnknownCluster", "answer_address"]
