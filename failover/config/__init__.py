"""Configuration: strict pydantic models loaded from YAML, and the probe budget they imply."""

from failover.config.actuators import FileActuator
from failover.config.addresses import Endpoint, split_hostport, url_endpoint
from failover.config.budget import (
    ATTEMPTS_PER_PROBE,
    VANTAGE,
    Job,
    ProbeKind,
    Rates,
    all_jobs,
    worst_case_rates,
)
from failover.config.durations import parse_duration
from failover.config.loader import ConfigError, Problem, load, parse
from failover.config.models import (
    Budget,
    Check,
    Cluster,
    Config,
    DnsCheck,
    HttpCheck,
    Policy,
    Probing,
    TcpCheck,
    Vantage,
)

__all__ = [
    "ATTEMPTS_PER_PROBE",
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
