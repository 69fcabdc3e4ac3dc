"""``discovery:``: cluster definitions read from files, re-read when they change (as
Prometheus's file_sd), for a provisioner that writes files rather than calling an API."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from failover.config.base import Strict, resolve
from failover.config.durations import PositiveDuration


class Discovery(Strict):
    files: list[str] = Field(min_length=1)
    """Glob patterns, relative to the config file; each file holds ``clusters: [...]`` as the
    config does."""
    refresh: PositiveDuration = 5.0
    """Seconds between two looks at the files."""

    @field_validator("files")
    @classmethod
    def _relative_to_config(cls, patterns: list[str], info: ValidationInfo) -> list[str]:
        return [str(resolve(Path(pattern), info)) for pattern in patterns]
