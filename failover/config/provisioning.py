"""``provisioning:``: whom to ask for new capacity when the fleet runs short, and how often."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from failover.config.addresses import HttpUrl
from failover.config.base import Strict, resolve
from failover.config.durations import Duration, PositiveDuration


class Webhook(Strict):
    url: HttpUrl
    """POSTed a JSON body with the shortfall (docs/provisioning.md)."""
    token_file: Path | None = None
    """File holding a bearer token sent with each call; relative to the config file."""
    timeout: PositiveDuration = 5.0
    """Seconds one attempt may take."""

    @field_validator("token_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve(value, info)


class Provisioning(Strict):
    webhook: Webhook
    after: Duration = 30.0
    """Seconds capacity must stay short before the hook is called: a blip is not a shortfall."""
    cooldown: PositiveDuration = 600.0
    """At most one call per this many seconds: new capacity takes minutes to arrive, and the
    shortfall lasts until it does."""
    attempts: int = Field(3, ge=1, le=10)
    """Tries per call, backed off exponentially (1 s, 2 s, 4 s ...) within the cooldown."""
