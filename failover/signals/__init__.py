"""Live load signals for the closed-loop recovery: values with the time they describe.

A source returns `failover.model.Signals`; what it could not measure is None (or
absent), never a guess, and each sample's ``measured_at`` lets the planner judge its age.
`PrometheusSource` queries a Prometheus HTTP API; the simulator has its own source.
"""

from failover.signals.api import QueryFailed, parse_reply
from failover.signals.metrics import SignalMetrics
from failover.signals.prometheus import PrometheusSource

__all__ = ["PrometheusSource", "QueryFailed", "SignalMetrics", "parse_reply"]
