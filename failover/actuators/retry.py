"""The one retry policy over tenacity: only temporary errors, capped by attempts and by time."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from failover.actuators.base import TemporaryActuatorError

log = logging.getLogger(__name__)


def retrying(
    what: str,
    on_retry: Callable[[], None],
    *,
    attempts: int = 5,
    within: float = 10.0,
    initial: float = 0.2,
    maximum: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncRetrying:
    """Exponential backoff with jitter; the last error is re-raised as it was.

    ``within`` only decides whether another attempt may start; it never cuts one short.
    Cutting an attempt is the caller's one deadline (`runner.bounded`).
    """

    def before_sleep(state: RetryCallState) -> None:
        on_retry()
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning("%s failed (attempt %d), retrying: %s", what, state.attempt_number, error)

    extra = {} if sleep is None else {"sleep": sleep}
    return AsyncRetrying(
        retry=retry_if_exception_type(TemporaryActuatorError),
        stop=stop_after_attempt(attempts) | stop_after_delay(within),
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial),
        before_sleep=before_sleep,
        reraise=True,
        **extra,  # type: ignore[arg-type]
    )
