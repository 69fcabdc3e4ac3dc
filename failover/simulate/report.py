"""The text summary: one column per policy run, so a comparison reads side by side."""

from __future__ import annotations

from collections.abc import Sequence

from failover.simulate.result import Peak, Result

LABEL_WIDTH = 40


def clock(seconds: float) -> str:
    """A scenario instant: ``2m00s``, ``1h02m03s``; fractions of a second shown when there."""
    whole, fraction = divmod(seconds, 1)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    tail = f"{secs:02d}s" if fraction < 1e-9 else f"{secs + fraction:04.1f}s"
    return f"{hours}h{minutes:02d}m{tail}" if hours else f"{minutes}m{tail}"


def span(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}s"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _peak(peak: Peak | None) -> str:
    if peak is None:
        return "-"
    return f"{_ratio(peak.overall)} / {_ratio(peak.recovery)}"


def _avoidable(result: Result, results: Sequence[Result]) -> str:
    """The avoidable errors, and as a multiple of the first run's (the planner's)."""
    text = f"{result.requests.avoidable:,.0f}"
    first = results[0].requests.avoidable
    if result is results[0] or first <= 0:
        return text
    return f"{text} (x{result.requests.avoidable / first:.1f})"


def render(results: Sequence[Result], wall_seconds: Sequence[float]) -> str:
    """Summaries of runs of one scenario (same events), one column each."""
    first = results[0]
    width = max(22, *(len(r.policy) + 2 for r in results))
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cells: Sequence[str]) -> None:
        rows.append((label, list(cells)))

    row("policy", [r.policy for r in results])
    row("wall time", [f"{wall:.2f}s" for wall in wall_seconds])
    row("requests", [f"{r.requests.total:,.0f}" for r in results])
    row("errored", [f"{r.requests.errored:,.0f} ({r.requests.errored_fraction:.3%})"
                    for r in results])
    row("  sent to down clusters", [f"{r.requests.down:,.0f}" for r in results])
    row("  over effective capacity", [f"{r.requests.overload:,.0f}" for r in results])
    row("  sent nowhere (shed)", [f"{r.requests.unplaced:,.0f}" for r in results])
    if any(r.requests.dependency for r in results):
        row("  failed by the shared dependency",
            [f"{r.requests.dependency:,.0f}" for r in results])
    row("floor (no policy errs fewer)", [f"{r.requests.floor:,.0f}" for r in results])
    row("avoidable (errored - floor)", [_avoidable(r, results) for r in results])
    if first.evacuations:
        row("evacuated (fault -> share 0)", [])
        for index, evacuation in enumerate(first.evacuations):
            label = f"  {clock(evacuation.at)} {evacuation.cluster} {evacuation.fault}"
            row(label, [span(r.evacuations[index].after) if index < len(r.evacuations)
                        else "-" for r in results])
    row("peak load/capacity (overall / recovering)", [])
    for name in first.clusters:
        row(f"  {name}", [_peak(r.peaks.get(name)) for r in results])
    if any(p.planned is not None for r in results for p in r.peaks.values()):
        row("peak planned load/capacity", [_ratio(max(
            (p.planned for p in r.peaks.values() if p.planned is not None), default=None))
            for r in results])

    label_width = max(LABEL_WIDTH, *(len(label) + 2 for label, _ in rows))
    header = (f"{first.scenario}: {clock(first.duration)} simulated, tick "
              f"{first.tick:g}s, seed {first.seed}")
    lines = [header]
    for label, cells in rows:
        line = label.ljust(label_width) + "".join(cell.ljust(width) for cell in cells)
        lines.append(line.rstrip())
    return "\n".join(lines)
