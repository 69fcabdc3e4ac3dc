"""Rise/fall hysteresis for one check: a verdict changes only after a run of agreeing results."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """Where one check stands; ``observe`` returns the next value, the old one is untouched.

    A check starts with no verdict (``passing is None``). Its first verdict is *passing* after
    ``rise`` consecutive passes and *failing* after ``fall`` consecutive failures, the same runs
    that flip an established verdict, so a fresh check is trusted exactly as much as a recovered
    one. A check that has given ``rise + fall`` results without either run is flapping: it
    becomes failing, because passing needs ``rise`` passes in a row and it has not shown them.
    That rule bounds how long a check can stay without a verdict, so start-up (which waits for
    every verdict) cannot hang on a flapping check.
    """

    passing: bool | None = None
    passes: int = 0
    """Consecutive passes up to the latest result."""
    failures: int = 0
    """Consecutive failures up to the latest result."""
    results: int = 0
    """Results seen so far, counted only until the first verdict."""

    def observe(self, ok: bool, rise: int, fall: int) -> Hysteresis:
        passes = self.passes + 1 if ok else 0
        failures = 0 if ok else self.failures + 1
        passing = self.passing
        if passes >= rise:
            passing = True
        elif failures >= fall:
            passing = False
        results = self.results
        if self.passing is None:
            results += 1
            if passing is None and results >= rise + fall:
                passing = False
        return Hysteresis(passing, passes, failures, results)
