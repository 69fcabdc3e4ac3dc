"""Configuration: strict pydantic models loaded from YAML, and the probe budget they imply."""

from failover.config.actuators import FileActuator
from failover.config.addresses import Endpoint, split_hostport, url_endpoint
from failover.config.budget import (
    VANTAGE,
    Job,
    ProbeKind,
    Rates,
    all_jobs,
    worst_case_rates,
)
from failover.config.durations import parse_duration
from failover.config.loader import ConfigError, Problem, load, parse
from failover.config.models import Cluster, Config, Policy, Vantage
from failover.config.probing import Budget, Check, DnsCheck, HttpCheck, Probing, TcpCheck

__all__ = [
    "VANTAGE",
    "Budget",
    "Check",
    "Cluster",
    "Config",
    "ConfigError",
    "DnsCheck",
    "Endpoint",
    "FileActuator",
    "HttpCheck",
    "Job",
    "Policy",
    "ProbeKind",
    "Probing",
    "Problem",
    "Rates",
    "TcpCheck",
    "Vantage",
    "all_jobs",
    "load",
    "parse",
    "parse_duration",
    "split_hostport",
    "url_endpoint",
    "worst_case_rates",
]
