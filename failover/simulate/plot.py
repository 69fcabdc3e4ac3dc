"""The figure: shares and load/capacity per cluster over time, one column per policy run.

matplotlib is an optional extra (``pip install failover[plot]``); it is imported here only,
and only when a plot is asked for.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

from failover.simulate.result import Result

INSTALL_HINT = "pip install failover[plot]"
MAX_RATIO = 3.0
"""Top of the load axis: past three times its capacity a cluster serves next to nothing
anyway, and a taller axis would flatten the policies that stay below 1."""
MAX_LEGEND = 12


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _ratios(offered: Sequence[float | None], capacity: Sequence[float | None]) -> list[float]:
    """Offered / effective capacity; NaN (a gap in the line) when unloaded, down or unlimited."""
    out = []
    for load, cap in zip(offered, capacity, strict=True):
        out.append(load / cap if load and cap else math.nan)
    return out


def _colour(what: str) -> str:
    if what.startswith("added"):
        return "tab:blue"
    return "tab:green" if all(part.endswith(" ok") for part in what.split(" + ")) \
        else "tab:red"


def write_plot(results: Sequence[Result], path: Path) -> None:
    """Write a PNG (or any format matplotlib knows from the suffix) to ``path``."""
    # No pyplot: a Figure with its own Agg canvas touches no global state or GUI backend.
    # The ignores keep mypy clean where the extra is not installed (unused-ignore: and where
    # it is, since matplotlib ships its own types).
    from matplotlib.backends.backend_agg import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - optional dependency
        FigureCanvasAgg,
    )
    from matplotlib.figure import Figure  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - optional dependency

    first = results[0]
    figure = Figure(figsize=(7.5 * len(results), 8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, len(results), sharex=True, sharey="row", squeeze=False)
    for column, result in enumerate(results):
        shares_ax, load_ax = axes[0][column], axes[1][column]
        minutes = [t / 60 for t in result.times]
        for name, series in result.clusters.items():
            shares = [math.nan if s is None else s for s in series.share]
            (line,) = shares_ax.plot(minutes, shares, label=name, drawstyle="steps-post")
            load_ax.plot(minutes, _ratios(series.offered_rps, series.capacity_rps),
                         color=line.get_color(), label=name)
        load_ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        for marker in result.events:
            for ax in (shares_ax, load_ax):
                ax.axvline(marker.at / 60, color=_colour(marker.what), linewidth=0.8,
                           linestyle="--", alpha=0.6)
        errored = (f"{result.requests.errored_fraction:.2%} of requests errored, "
                   f"{result.requests.avoidable:,.0f} avoidable")
        shares_ax.set_title(f"{result.policy}: {errored}")
        shares_ax.set_ylabel("share of traffic")
        load_ax.set_ylabel("offered load / effective capacity")
        load_ax.set_ylim(0, MAX_RATIO)
        load_ax.set_xlabel("minutes (dashed: red fault, green fixed, blue cluster added)")
    if len(first.clusters) <= MAX_LEGEND:
        axes[0][-1].legend(loc="upper right", fontsize="small")
    figure.suptitle(first.scenario)
    figure.savefig(path)
