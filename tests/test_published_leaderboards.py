"""The published leaderboards are exactly what ``cl-bench leaderboard`` makes from the committed results
files, and they cover every built-in method with three finished seeds."""

from pathlib import Path

import pytest

from cl_bench import registry
from cl_bench.leaderboard import build_leaderboard, load_runs, to_markdown

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
# Built-ins added after a board's runs were made, listed as pending in leaderboards/README.md until their
# three seeds are published.
WAVE_2 = {"magmax", "moe-adapters", "nusa-cl", "rail-dual", "rail-primal"}
PENDING = {"mtil-micro": WAVE_2, "cil-micro": WAVE_2}


@pytest.mark.parametrize("scenario", ["mtil-micro", "cil-micro"])
def test_published_leaderboard_is_regenerated_from_committed_runs(scenario, monkeypatch):
    monkeypatch.chdir(ROOT.parent)  # paths in the tables are relative to the repository root
    lb = build_leaderboard(load_runs([Path("leaderboards/runs") / scenario]), scenario=scenario)
    assert to_markdown(lb) == (ROOT / f"{scenario}.md").read_text(), "regenerate it: see leaderboards/README.md"
    built_in = {name for name, (_, source) in registry.methods().items() if source == "built-in"}
    assert {c.method for c in lb.costs} == built_in - PENDING[scenario]
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{m}`" in readme for m in PENDING[scenario]), "list pending methods in leaderboards/README.md"
    assert all(c.n == 3 for c in lb.costs) and not lb.excluded


@pytest.mark.parametrize("scenario", ["mtil-micro", "cil-micro"])
def test_published_runs_are_of_the_current_scenario_version(scenario):
    """A new world version (or scenario change) must be followed by regenerated runs and tables."""
    from cl_bench.results import load_results

    files = sorted((ROOT / "runs" / scenario).glob("*/seed*.json"))
    assert files
    current = registry.get_scenario(scenario).version
    assert {load_results(f)["scenario_version"] for f in files} == {current}
