"""Rise/fall hysteresis of one check."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from failover.health.hysteresis import Hysteresis


def run(results: str, rise: int = 2, fall: int = 3) -> list[bool | None]:
    """Feed ``P``/``F`` results; return the verdict after each."""
    state, verdicts = Hysteresis(), []
    for symbol in results:
        state = state.observe(symbol == "P", rise, fall)
        verdicts.append(state.passing)
    return verdicts


def test_no_verdict_at_start() -> None:
    """A fresh check has no verdict."""
    assert Hysteresis().passing is None


def test_first_verdict_passing_after_rise_passes() -> None:
    """The first verdict is passing only after rise consecutive passes."""
    assert run("PP") == [None, True]
    assert run("PFPP") == [None, None, None, True]


def test_first_verdict_failing_after_fall_failures() -> None:
    """The first verdict is failing only after fall consecutive failures."""
    assert run("FFF") == [None, None, False]


def test_passing_needs_fall_consecutive_failures_to_fail() -> None:
    """A passing check survives fall-1 failures; a pass in between resets the count."""
    assert run("PPFFPFF") == [None, True, True, True, True, True, True]
    assert run("PPFFF")[-1] is False


def test_failing_needs_rise_consecutive_passes_to_pass() -> None:
    """A failing check stays failing through rise-1 passes and an interrupted run."""
    assert run("FFFPFP") == [None, None, False, False, False, False]
    assert run("FFFPP")[-1] is True


def test_flapping_without_verdict_becomes_failing() -> None:
    """A check that shows neither run within rise+fall results counts as failing."""
    assert run("PFPF") == [None, None, None, None]
    assert run("PFPFP")[-1] is False


def test_flapping_rule_only_applies_before_first_verdict() -> None:
    """After a verdict, alternating results never flip it: a passing check stays passing."""
    assert run("PP" + "FP" * 10)[-1] is True


def test_counts_consecutive_runs() -> None:
    """passes and failures count the current run only."""
    state = Hysteresis()
    for ok in (True, False, False):
        state = state.observe(ok, 2, 3)
    assert (state.passes, state.failures) == (0, 2)


def test_rise_and_fall_of_one_follow_every_result() -> None:
    """With rise=fall=1 the verdict is the latest result."""
    assert run("PFFP", rise=1, fall=1) == [True, False, False, True]


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5), st.integers(1, 5))
def test_verdict_changes_only_after_a_full_run(results: list[bool], rise: int, fall: int) -> None:
    """Once set, a verdict turns passing only after rise passes, failing only after fall."""
    state = Hysteresis()
    for ok in results:
        before = state.passing
        state = state.observe(ok, rise, fall)
        if before is not None and state.passing != before:
            assert state.passes >= rise if state.passing else state.failures >= fall
        if before is None and state.passing is True:
            assert state.passes >= rise
