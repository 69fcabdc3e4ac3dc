"""One check's running record: its hysteresis, last result and recent window."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from failover.config.budget import Job, ProbeKind
from failover.health.hysteresis import Hysteresis
from failover.health.score import WINDOW, Score, check_score
from failover.model import FailureClass, ProbeResult

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """One check as /v1/status shows it; ``as_dict`` gives CONTRACT's ``checks`` fields and more."""

    kind: ProbeKind
    target: str
    """The label without its kind: ``127.0.0.1:5301 api.local``, a URL, or ``host:port``."""
    label: str
    ok: bool | None
    """The latest result; None before the first one."""
    latency_ms: float | None
    error: str | None
    """``class: detail`` of the latest result when it failed."""
    consecutive_failures: int
    verdict: str | None
    """``passing``, ``failing``, or None before the first verdict."""
    success_ratio: float
    latency_factor: float

    def as_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies field by field, and /v1/status at fleet
        # scale makes thousands of these per request.
        return {"kind": self.kind, "target": self.target, "label": self.label, "ok": self.ok,
                "latency_ms": self.latency_ms, "error": self.error,
                "consecutive_failures": self.consecutive_failures, "verdict": self.verdict,
                "success_ratio": self.success_ratio, "latency_factor": self.latency_factor}


@dataclass
class CheckRecord:
    """Mutable on purpose: the tracker updates one per probe result, many times a second."""

    job: Job
    hysteresis: Hysteresis = field(default_factory=Hysteresis)
    last: ProbeResult | None = None
    last_at: float | None = None
    """Loop-clock seconds of the latest result."""
    last_failure: FailureClass | None = None
    """Kept after passes resume, so a still-failing check can say what failed."""
    class_failures: int = 0
    """Consecutive failures of ``last_failure``'s class up to the latest failure: the tail of
    the hysteresis's run of failures (of any class) that a reason may name by that class."""
    recent: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    stamps: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    """Loop-clock seconds of each result in ``recent``."""
    observed_since: float | None = None
    """Loop-clock seconds since which results have come without a gap longer than the bound
    the tracker passes in (a restart or a stalled process breaks the run)."""

    _scored: tuple[float, Score] | None = field(default=None, repr=False, compare=False)
    """The score of the window as it stands, for the timeout it was computed with: every
    tick reads it, a result replaces it."""
    _memos: dict[str, tuple[float, Any]] = field(default_factory=dict, repr=False,
                                                 compare=False)
    """What readers derived from the window as it stands (`memo`), by name."""

    def record(self, result: ProbeResult, now: float, rise: int, fall: int,
               gap: float = float("inf")) -> None:
        self.hysteresis = self.hysteresis.observe(result.ok, rise, fall)
        if self.last_at is None or self.observed_since is None or now - self.last_at > gap:
            self.observed_since = now
        self.last, self.last_at = result, now
        if not result.ok:
            same = self.hysteresis.failures > 1 and result.failure_class == self.last_failure
            self.class_failures = self.class_failures + 1 if same else 1
            self.last_failure = result.failure_class
        self.recent.append((result.ok, result.latency))
        self.stamps.append(now)
        self._scored = None
        self._memos.clear()

    def memo(self, name: str, timeout: float, derive: Callable[[CheckRecord, float], T]) -> T:
        """``derive(self, timeout)``, computed once per result: each tick reads every
        check, while at fleet scale most have had no new result since the last tick."""
        kept = self._memos.get(name)
        if kept is not None and kept[0] == timeout:
            value: T = kept[1]
            return value
        value = derive(self, timeout)
        self._memos[name] = (timeout, value)
        return value

    def score(self, timeout: float) -> Score:
        if self._scored is None or self._scored[0] != timeout:
            self._scored = (timeout, check_score(self.recent, timeout))
        return self._scored[1]

    def failing_reason(self, rise: int) -> str:
        """Why this failing check is failing: ``dns 127.0.0.1:5301 api.local timeout x3``.

        ``xN`` counts the failures of that class in a row; when failures of other classes came
        just before, the whole run is given too (``refused x1 (16 failures in a row)``), so a
        class is never credited with failures it did not have.
        """
        failed = self.last_failure or "failure"
        state = self.hysteresis
        if state.failures:
            run = min(self.class_failures, state.failures)
            if run == state.failures:
                return f"{self.job.label} {failed} x{run}"
            return f"{self.job.label} {failed} x{run} ({state.failures} failures in a row)"
        return f"{self.job.label} {failed}, then {state.passes}/{rise} passes"

    def status(self, timeout: float) -> CheckStatus:
        last = self.last
        error = None
        if last is not None and not last.ok:
            failed = last.failure_class or "failure"
            error = f"{failed}: {last.detail}" if last.detail else failed
        verdict = self.hysteresis.passing
        score = self.score(timeout)
        return CheckStatus(
            kind=self.job.kind,
            target=self.job.label.removeprefix(f"{self.job.kind} "),
            label=self.job.label,
            ok=None if last is None else last.ok,
            latency_ms=None if last is None else round(last.latency * 1000, 1),
            error=error,
            consecutive_failures=self.hysteresis.failures,
            verdict=None if verdict is None else ("passing" if verdict else "failing"),
            success_ratio=score.success_ratio,
            latency_factor=score.latency_factor,
        )
