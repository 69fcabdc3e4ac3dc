"""The distributed mode's parts, built from the config's ``coordination`` section: this
replica in etcd, and the operator overrides and registered clusters shared through it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from failover.config.coordination import Coordination
from failover.coordination.replica import Replica
from failover.daemon.overrides import Overrides
from failover.daemon.shared_overrides import SharedOverrides
from failover.daemon.shared_registry import PREFIX as CLUSTER
from failover.daemon.shared_registry import Adopt, SharedRegistry
from failover.metrics import Metrics

log = logging.getLogger("failover.daemon")


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def build(spec: Coordination, tick: float, overrides: Overrides, metrics: Metrics,
          clusters: Callable[[], set[str]], adopt: Adopt,
          ) -> tuple[Replica, SharedOverrides, SharedRegistry]:
    def unusable(what: str, why: str) -> None:
        # Left out (a report's last good one stays, and ages), counted and said: no value
        # another process wrote may stop this one.
        metrics.errors.labels("etcd_value").inc()
        log.warning("etcd holds a %s value we cannot use: %s", what, why)

    shared: SharedOverrides | None = None
    registered: SharedRegistry | None = None

    def overrides_changed(values: Mapping[str, bytes]) -> None:
        # One prefix, two owners: the registrations' keys beside the overrides' own.
        if shared is not None:
            shared.take({k: v for k, v in values.items() if not k.startswith(CLUSTER)})
        if registered is not None:
            registered.take(values)

    replica = Replica(spec, _loop_time, tick, unusable, overrides_changed)
    shared = SharedOverrides(overrides, replica.put_override, clusters,
                             lambda why: unusable("overrides", why))
    registered = SharedRegistry(replica.put_override, adopt,
                                lambda why: unusable("registration", why))
    return replica, shared, registered
