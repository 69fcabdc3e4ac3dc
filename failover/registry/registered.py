"""Clusters registered through the admin API (``PUT /v1/clusters/{name}``): run beside the
config file's own, checked with them as one config by every rule the file is, and kept in
the state folder so that a restart brings them back.

A newly provisioned cluster registers itself this way while an incident is on: nobody should
have to edit and reload a file for capacity to come in, and nothing a body says can take the
daemon past its probe budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pydantic

from failover.actuators.file import write_atomically
from failover.config import Cluster, Config
from failover.config.loader import error_message
from failover.config.models import with_clusters

log = logging.getLogger("failover.daemon")

FORMAT = 1
FILE_NAME = "clusters.json"


class RegistrationRefused(Exception):
    """Why a registration was not taken, with the HTTP status that says whose fault it is:
    400 for a body that is wrong in itself, 409 for one that does not fit with the rest."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RegistryUnreadable(Exception):
    """The saved registrations cannot be read back: the daemon must not start without them."""


def compose(base: Config, registered: Iterable[Cluster]) -> Config:
    """The config the daemon runs: the file's, with the registered clusters after its own,
    validated as a whole (names unique, every target within its budget). Raises
    pydantic.ValidationError."""
    return with_clusters(base, registered)


def problems(error: pydantic.ValidationError, config_clusters: int) -> str:
    """A composed config's errors as an operator reads them: where, then what."""
    found = []
    for problem in error.errors():
        ctx = problem.get("ctx") or {}
        at = (*problem["loc"], *ctx.get("at", ()))
        where = ".".join(f"[{part}]" if isinstance(part, int) else part for part in at)
        where = where.replace(".[", "[")
        if len(at) > 1 and at[0] == "clusters" and isinstance(at[1], int) \
                and at[1] >= config_clusters:
            where += " (a registered cluster)"
        found.append(f"{where}: {error_message(problem)}" if where else error_message(problem))
    return "; ".join(found)


def cluster_from_body(name: str, body: Any) -> Cluster:
    """The cluster a PUT body describes: the config's cluster shape, as JSON."""
    if not isinstance(body, dict):
        raise RegistrationRefused(400, "body must be a JSON object: a cluster as in the config")
    if body.get("name", name) != name:
        raise RegistrationRefused(400, f"name {body['name']!r} in the body is not {name!r} "
                                       "in the path")
    try:
        return Cluster.model_validate({**body, "name": name})
    except pydantic.ValidationError as exc:
        raise RegistrationRefused(400, problems(exc, 0)) from exc


class Registry:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self.bodies: dict[str, dict[str, Any]] = {}
        """What each registration said, kept as sent: saved and read back as it came."""
        self.clusters: dict[str, Cluster] = {}
        self.leaving: set[str] = set()
        """Deregistered, run at weight 0 until their share is 0 on every actuator."""

    def load(self) -> None:
        """At start. No file: nothing registered yet. A file that cannot be read stops the
        start: running without its clusters would drop them, and the next save lose them."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            msg = f"{self.path}: cannot read the registered clusters: {exc.strerror or exc}"
            raise RegistryUnreadable(msg) from exc
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                msg = f"not a format {FORMAT} registry"
                raise ValueError(msg)
            bodies = doc.get("clusters")
            if not isinstance(bodies, dict):
                msg = "'clusters' is not an object"
                raise ValueError(msg)
            clusters = {name: cluster_from_body(name, body) for name, body in bodies.items()}
            leaving = doc.get("leaving", [])
            if not isinstance(leaving, list) or not set(leaving) <= clusters.keys():
                msg = "'leaving' is not a list of registered clusters"
                raise ValueError(msg)
        except (ValueError, RegistrationRefused) as exc:
            msg = (f"{self.path}: the registered clusters cannot be read back ({exc}); "
                   "fix or remove the file, nothing in it has been changed")
            raise RegistryUnreadable(msg) from exc
        self.bodies, self.clusters, self.leaving = bodies, clusters, set(leaving)
        if clusters:
            log.info("registered clusters restored from %s: %s", self.path,
                     ", ".join(sorted(clusters)))

    def running(self, extra: Cluster | None = None) -> list[Cluster]:
        """The clusters to run, ``extra`` added or replacing its namesake. A deregistered
        one runs at weight 0 until it is removed: its share goes down in the planner's
        phased move, as any change of weight does, not at once like an operator's drain."""
        clusters = dict(self.clusters)
        if extra is not None:
            clusters[extra.name] = extra
        return [c.model_copy(update={"weight": 0}) if name in self.leaving else c
                for name, c in clusters.items()]

    def put(self, cluster: Cluster, body: Mapping[str, Any]) -> bool:
        """Record a registration the daemon has taken up; True when the name is new."""
        created = cluster.name not in self.clusters
        self.clusters[cluster.name] = cluster
        self.bodies[cluster.name] = {**body, "name": cluster.name}
        return created

    def remove(self, name: str) -> None:
        self.clusters.pop(name, None)
        self.bodies.pop(name, None)
        self.leaving.discard(name)

    async def save(self) -> bool:
        """Written before the caller is answered; False when the disk refused (the
        registration holds in memory; a restart would lose it)."""
        data = json.dumps({"format": FORMAT, "clusters": self.bodies,
                           "leaving": sorted(self.leaving)}, indent=1,
                          sort_keys=True).encode() + b"\n"
        try:
            await asyncio.to_thread(write_atomically, self.path, data)
        except OSError as exc:
            log.error("cannot save the registered clusters to %s: %s", self.path, exc)
            return False
        return True
