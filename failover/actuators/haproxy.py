"""Sets an HAProxy backend's server weights from the plan over the runtime API, and checks them.

Each mapped cluster's share becomes its server's weight (`server_weights`): the largest
share gets `WEIGHT_MAX` and the others proportionally; share 0 drains the server. An apply
sends every command and reads ``show servers state`` back on the same connection, so it is
idempotent and verified; ``drift`` reads the state alone and names what differs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from failover.actuators.base import Applied, PermanentActuatorError, TemporaryActuatorError
from failover.actuators.haproxy_api import NAME, RuntimeApi, ServerState, parse_servers_state
from failover.config.actuators import HaproxyActuator as HaproxyActuatorConfig
from failover.config.addresses import Endpoint
from failover.model import Plan

log = logging.getLogger(__name__)

WEIGHT_MAX = 256
"""HAProxy's largest server weight; the largest share gets it, for the finest split."""
SHARE_DIGITS = 6
"""Shares are compared at the precision weights.json shows them: what it shows as 0 is 0."""


def server_weights(shares: Mapping[str, float]) -> dict[str, int]:
    """Weights 0..256 for shares: the largest share gets 256, the others ``share / largest``
    of it, rounded half up; a positive share never gets less than 1, share 0 gets 0.

    Only ratios matter to HAProxy, so shares that sum below 1 (shedding) or clusters that are
    not behind this backend do not change the split among the ones that are.
    """
    rounded = {name: max(0.0, round(share, SHARE_DIGITS)) for name, share in shares.items()}
    largest = max(rounded.values(), default=0.0)
    if largest <= 0:
        return dict.fromkeys(rounded, 0)
    return {name: 0 if share <= 0 else max(1, math.floor(WEIGHT_MAX * share / largest + 0.5))
            for name, share in rounded.items()}


@dataclass(frozen=True, slots=True)
class Want:
    """What one server should look like for a plan."""

    cluster: str
    server: str
    weight: int

    @property
    def state(self) -> str:
        """``ready`` with traffic, ``drain`` without: no new connections, existing ones end."""
        return "ready" if self.weight > 0 else "drain"


def _state_name(server: ServerState) -> str:
    if server.maint:
        return "maint"
    return "drain" if server.drain else "ready"


def differences(backend: str, wants: list[Want],
                servers: Mapping[str, ServerState]) -> list[str]:
    """What differs between ``servers`` as HAProxy reports them and ``wants``, one text each.

    Only what this actuator sets is compared: the weight and the forced drain and
    maintenance bits. Health-check verdicts and states HAProxy sets itself (maintenance from
    the config or DNS, tracking) are HAProxy's own business, not drift.
    """
    found: list[str] = []
    for want in wants:
        where = f"server {backend}/{want.server}"
        server = servers.get(want.server)
        if server is None:
            found.append(f"{where} missing from the backend")
            continue
        if _state_name(server) != want.state:
            found.append(f"{where} state {_state_name(server)}, want {want.state}")
        if server.weight != want.weight:
            found.append(f"{where} weight {server.weight}, want {want.weight}")
    return found


def _invalid(backend: str, servers: Mapping[str, str]) -> str | None:
    """Why this mapping can never work in HAProxy, or None."""
    for name in (backend, *servers.values()):
        if not NAME.fullmatch(name):
            return f"{name!r} is not a valid HAProxy name (letters, digits, '_.:-')"
    seen: dict[str, str] = {}
    for cluster, server in servers.items():
        if server in seen:
            return f"server {server!r} is mapped from both {seen[server]!r} and {cluster!r}"
        seen[server] = cluster
    return None


class HaproxyActuator:
    """One backend's servers, one per cluster, weighted by the plan's shares."""

    def __init__(self, *, backend: str, servers: Mapping[str, str],
                 socket: Path | None = None, address: Endpoint | str | None = None) -> None:
        self.backend = backend
        self.servers = dict(servers)
        """Cluster name -> server name in ``backend``."""
        self._api = RuntimeApi(socket=socket, address=address)
        self._invalid = _invalid(backend, self.servers)
        self.kept = 0
        """Applies that left HAProxy as it was because no mapped cluster had a share."""

    @classmethod
    def from_config(cls, spec: HaproxyActuatorConfig) -> HaproxyActuator:
        # spec.timeout is the runner's: it bounds each apply and drift check from outside.
        return cls(backend=spec.backend, servers=spec.servers, socket=spec.socket,
                   address=spec.address)

    @property
    def name(self) -> str:
        return f"haproxy:{self.backend}@{self._api.label}"

    def wants(self, plan: Plan) -> list[Want]:
        """Each mapped server's weight for ``plan``; a cluster absent from it gets 0."""
        shares = plan.shares  # once: a lookup per cluster would be quadratic at fleet scale
        weights = server_weights({cluster: shares.get(cluster, 0.0) for cluster in self.servers})
        return [Want(cluster, server, weights[cluster])
                for cluster, server in self.servers.items()]

    async def apply(self, applied: Applied) -> None:
        """Set every mapped server's weight and state, then read the backend back to verify.

        Servers that get traffic are set first and drained ones last, so no moment of the
        change leaves the backend without a server. A plan that gives none of them traffic
        changes nothing (see `kept`).
        """
        self._check_valid()
        plan = applied.plan
        wants = sorted(self.wants(plan), key=lambda w: w.weight == 0)
        if all(w.weight == 0 for w in wants):
            # Draining every server would answer 503 to every client at once. The weights in
            # place are at worst as bad and usually partly right (the shared failure may be
            # in the probes), so they stay: static stability, as the DNS actuator does.
            self.kept += 1
            log.warning("plan %d gives no server of %s any traffic: keeping HAProxy's weights "
                        "as they are (%d times so far)", plan.version, self.name, self.kept,
                        extra={"actuator": self.name, "version": plan.version})
            return
        commands: list[str] = []
        for want in wants:
            target = f"set server {self.backend}/{want.server}"
            # Weight before ``ready`` so a server enters at its new weight, ``drain`` before
            # weight 0 so it stops taking new connections at once.
            if want.weight > 0:
                commands += [f"{target} weight {want.weight}", f"{target} state ready"]
            else:
                commands += [f"{target} state drain", f"{target} weight 0"]
        answers = await self._api.execute([*commands, f"show servers state {self.backend}"])
        refused = [f"'{command}': {' '.join(answer)}"
                   for command, answer in zip(commands, answers[:-1], strict=True) if answer]
        if refused:
            msg = (f"HAProxy at {self._api.label} refused {len(refused)} of {len(commands)} "
                   f"commands: {'; '.join(refused)}")
            raise PermanentActuatorError(msg)
        servers = parse_servers_state(answers[-1], self.backend, self._api.label)
        wrong = differences(self.backend, wants, servers)
        if wrong:
            # HAProxy took every command yet shows something else: someone changed it at the
            # same moment. Temporary: the retry will set it again.
            msg = (f"HAProxy at {self._api.label} does not show plan {plan.version} after "
                   f"applying it: {'; '.join(wrong)}")
            raise TemporaryActuatorError(msg)
        log.debug("%s now %s", self.name,
                  ", ".join(f"{w.server} {w.state} {w.weight}" for w in wants),
                  extra={"actuator": self.name, "version": plan.version})

    async def drift(self, applied: Applied) -> list[str]:
        """Read the backend's servers and name each difference from ``applied.plan``."""
        self._check_valid()
        answers = await self._api.execute([f"show servers state {self.backend}"])
        servers = parse_servers_state(answers[0], self.backend, self._api.label)
        wants = self.wants(applied.plan)
        if all(w.weight == 0 for w in wants):
            return []  # apply keeps whatever is there; the plan asks for nothing in particular
        return differences(self.backend, wants, servers)

    def _check_valid(self) -> None:
        if self._invalid is not None:
            msg = f"{self.name}: {self._invalid}"
            raise PermanentActuatorError(msg)
