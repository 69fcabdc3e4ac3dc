"""`failover simulate`: summaries, JSON, comparison, plots and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from failover.cli import main
from tests.simulate.fixtures import CONFIG, FLEET, SCENARIOS

SCENARIO = """\
name: short outage
duration: 4m
events:
  - {at: 1m, cluster: a, dns: timeout}
  - {at: 2m, cluster: a, dns: ok}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    config, scenario = tmp_path / "config.yaml", tmp_path / "scenario.yaml"
    config.write_text(CONFIG)
    scenario.write_text(SCENARIO)
    return str(scenario), str(config)


@pytest.mark.parametrize("name", ["single-dns-outage.yaml", "flapping.yaml",
                                  "new-cluster.yaml"])
def test_shipped_scenarios_run(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each shipped scenario runs on the fleet and prints a summary (december-11 runs in
    test_engine)."""
    assert main(["simulate", str(SCENARIOS / name), "-c", str(FLEET)]) == 0
    out = capsys.readouterr().out
    assert "evacuated (fault -> share 0)" in out
    assert "wall time" in out


def test_summary_by_default(files: tuple[str, str], capsys: pytest.CaptureFixture[str]
                            ) -> None:
    """Without flags it prints the text summary: errors, evacuations, peaks, wall time."""
    scenario, config = files
    assert main(["simulate", scenario, "-c", config]) == 0
    out = capsys.readouterr().out
    assert out.startswith("short outage: 4m00s simulated, tick 1s, seed 0")
    assert "  1m00s a dns timeout" in out
    assert "peak load/capacity" in out


def test_json_is_the_full_result(files: tuple[str, str], capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    """--json prints one parseable document with the time series; the same seed repeats it."""
    scenario, config = files
    assert main(["simulate", scenario, "-c", config, "--json", "--seed", "3"]) == 0
    first = capsys.readouterr()
    doc = json.loads(first.out)
    (run,) = doc["runs"]
    assert (run["policy"], run["seed"]) == ("planner", 3)
    assert len(run["times"]) == 240 == len(run["clusters"]["a"]["share"])
    assert run["evacuations"][0]["cluster"] == "a"
    assert "errored_fraction" in run["requests"]
    assert "simulated in" in first.err
    assert main(["simulate", scenario, "-c", config, "--json", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first.out


def test_compare_naive_runs_both(files: tuple[str, str], capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    """--compare naive puts a second column (or a second JSON run) beside the planner's."""
    scenario, config = files
    assert main(["simulate", scenario, "-c", config, "--compare", "naive"]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    assert header.split() == ["policy", "planner", "naive"]
    assert main(["simulate", scenario, "-c", config, "--compare", "naive", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [run["policy"] for run in runs] == ["planner", "naive"]


def test_unknown_cluster_exits_1_with_location(
        tmp_path: Path, files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario naming a cluster the config lacks exits 1 with file:line: path: message."""
    _, config = files
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration: 5m\nevents:\n  - {at: 1m, cluster: zz, http: down}\n")
    assert main(["simulate", str(bad), "-c", config]) == 1
    assert capsys.readouterr().err.strip() == f"{bad}:4: events[0].cluster: unknown cluster 'zz'"


def test_bad_config_exits_1(tmp_path: Path, files: tuple[str, str],
                            capsys: pytest.CaptureFixture[str]) -> None:
    """A config that does not load exits 1 with its located error."""
    scenario, _ = files
    config = tmp_path / "broken.yaml"
    config.write_text("clusters: []\n")
    assert main(["simulate", scenario, "-c", str(config)]) == 1
    assert f"{config}:1: clusters:" in capsys.readouterr().err


def test_plot_writes_a_png(tmp_path: Path, files: tuple[str, str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    """--plot writes a PNG of both runs when matplotlib is installed."""
    pytest.importorskip("matplotlib")
    scenario, config = files
    png = tmp_path / "out.png"
    assert main(["simulate", scenario, "-c", config, "--plot", str(png),
                 "--compare", "naive"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"plot written to {png}" in capsys.readouterr().out


def test_plot_without_matplotlib_exits_1(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: tuple[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without the plot extra, --plot exits 1 before simulating and says what to install."""
    monkeypatch.setattr("failover.simulate.command.available", lambda: False)
    scenario, config = files
    assert main(["simulate", scenario, "-c", config, "--plot", str(tmp_path / "x.png")]) == 1
    captured = capsys.readouterr()
    assert "pip install failover[plot]" in captured.err
    assert captured.out == ""
    assert not (tmp_path / "x.png").exists()


def test_unwritable_plot_exits_1(tmp_path: Path, files: tuple[str, str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A plot path in a missing folder is a user error, not a traceback."""
    pytest.importorskip("matplotlib")
    scenario, config = files
    assert main(["simulate", scenario, "-c", config, "--plot",
                 str(tmp_path / "no" / "such" / "dir.png")]) == 1
    assert "cannot write" in capsys.readouterr().err
