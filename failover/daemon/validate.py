"""The rules a config must keep to be run that the config models cannot check alone: they
need the files it names, or the actuators built from it. `check`, `run` and every reload
apply the same list, so a config `check` passes is one `run` starts with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from failover.api.token import TokenError, admin_token
from failover.config import Config
from failover.config.base import dotted
from failover.daemon.parts import UnsupportedActuator, build_actuators


class Refused(Exception):
    """A config that loads but cannot be run; the message lists every refusal."""


@dataclass(frozen=True, slots=True)
class Refusal:
    at: tuple[str | int, ...]
    """Where in the config: ``("listen", "admin_token_file")``."""
    message: str
    """``key.path: why``, as the loader's errors read."""


def refusals(config: Config) -> list[Refusal]:
    """Every reason this config cannot be run; empty when it can."""
    found: list[Refusal] = []
    if config.demand_rps is None:
        for index, cluster in enumerate(config.clusters):
            if cluster.capacity_rps is not None:
                at = ("clusters", index, "capacity_rps")
                found.append(Refusal(at, f"{dotted(at)}: capacity_rps is used only with "
                                         "demand_rps (the total demand, at the top level): "
                                         "set it, or remove capacity_rps"))
                break  # one says it; the others are the same mistake
    try:
        admin_token(config)
    except TokenError as exc:
        found.append(Refusal(("listen", "admin_token_file"), str(exc)))
    why = _unwritable(config.state_dir)
    if why is not None:
        found.append(Refusal(("state_dir",), f"state_dir: {config.state_dir}: {why}"))
    try:
        build_actuators(config)
    except UnsupportedActuator as exc:
        found.append(Refusal(("actuators",), str(exc)))
    return found


def _unwritable(folder: Path) -> str | None:
    """Why the daemon could not save its state in ``folder`` (created at start if missing);
    None if it could. Looks only, creates nothing."""
    here = folder
    while not here.exists():
        if here.parent == here:
            return "no existing parent folder"
        here = here.parent
    what = "it" if here == folder else f"its parent {here}"
    if not here.is_dir():
        return f"{what} is not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{what} is not writable"
    return None
