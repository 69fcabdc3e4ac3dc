"""A lab cluster's load: the one-second window that both enforces capacity and measures load.

Windows are one second long and back to back while requests keep coming; after a second or
more with none, the next window starts at the next request (so a burst after a pause gets
a full window from its first request, as before warm-up existed). Each window's capacity is
fixed when it starts, at ``capacity_rps x warmth`` then, less ``reject_cost`` for each 503
of the window before (refusing costs work too: an overloaded cluster serves less than its
capacity); requests offered beyond it get 503. A cold call lowers the current window's
capacity at once.

The figures reported are those of the last complete window: exact counts, so rates in
requests per second, of a real one-second interval that ended at most a second ago.

Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from failover.lab.warmth import Warmth, WarmthParams


@dataclass(frozen=True)
class WindowFigures:
    """What one second of the cluster's life looked like."""

    offered: int = 0
    """Requests received, health checks included: each one counts against capacity."""
    served: int = 0
    """Answered 200 within the window (health checks included)."""
    rejected: int = 0
    """Answered 503 as over capacity."""
    capacity: float | None = None
    """The window's effective capacity; None: unlimited."""

    @property
    def utilization(self) -> float | None:
        """Offered / effective capacity (above 1 when overloaded); None when unlimited."""
        return None if self.capacity is None else self.offered / self.capacity


class ClusterLoad:
    """Without ``capacity_rps`` it only counts; with it, it rejects and warms up too."""

    def __init__(self, capacity_rps: float | None, params: WarmthParams | None,
                 now: float, *, reject_cost: float = 0.0) -> None:
        self.capacity_rps = capacity_rps
        self.reject_cost = reject_cost
        self.warmth = None if capacity_rps is None or params is None else Warmth(params, now)
        self._start: float | None = None
        """Start of the current window; None before the first request."""
        self._current = WindowFigures()
        self._previous = WindowFigures()
        """The window just before the current one (empty if there was a pause)."""

    def warmth_level(self, now: float) -> float | None:
        """Warmth at ``now``; None: unlimited, so warmth does not apply."""
        if self.capacity_rps is None:
            return None
        return 1.0 if self.warmth is None else self.warmth.level(now)

    def capacity(self, now: float) -> float | None:
        """Effective capacity at ``now``; None: unlimited."""
        level = self.warmth_level(now)
        if self.capacity_rps is None or level is None:
            return None
        return self.capacity_rps * level

    def offer(self, now: float) -> bool:
        """A request arrived: False if it is beyond the window's capacity (answer 503)."""
        self._roll(now)
        window = self._current
        offered = window.offered + 1
        admitted = window.capacity is None or offered <= window.capacity
        self._current = replace(window, offered=offered,
                                rejected=window.rejected + (not admitted))
        return admitted

    def served(self, now: float, *, traffic: bool) -> None:
        """A request was answered 200; ``traffic``: not a health check, so it warms."""
        self._roll(now)
        self._current = replace(self._current, served=self._current.served + 1)
        if traffic and self.warmth is not None:
            self.warmth.record_served(now)

    def make_cold(self, now: float) -> None:
        if self.warmth is not None:
            self.warmth.make_cold()
            self._roll(now)
            self._current = replace(self._current, capacity=self.capacity(now))

    def last_window(self, now: float) -> WindowFigures:
        """The last complete window at ``now``. Reading changes nothing."""
        if self._start is None:
            return WindowFigures(capacity=self.capacity(now))
        elapsed = now - self._start
        if elapsed < 1:
            return self._previous
        if elapsed < 2:
            return self._current
        # The window after the current one ended with nothing in it; nothing happened since
        # the current window either, so the capacity a second ago is what it would have had.
        return WindowFigures(capacity=self.capacity(now - 1))

    def _roll(self, now: float) -> None:
        if self._start is not None and now - self._start < 1:
            return
        if self._start is not None and now - self._start < 2:
            self._previous, self._start = self._current, self._start + 1
            debt = self.reject_cost * self._previous.rejected
        else:
            self._previous = WindowFigures(capacity=self.capacity(now - 1))
            self._start = now
            debt = 0.0  # a quiet second in between paid it off
        # Nothing happened between the window's start and now (this is its first event), so
        # the capacity it had at its start is known exactly.
        capacity = self.capacity(self._start)
        self._current = WindowFigures(
            capacity=None if capacity is None else max(0.0, capacity - debt))
