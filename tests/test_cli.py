"""The command line: exit codes, one-line errors, list/show, and a third-party plugin installed for real."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY_RUN

from cl_bench import registry
from cl_bench.cli import main

PLUGIN = Path(__file__).parent / "plugin_pkg"


def _sets(items):
    return [x for s in items for x in ("--set", s)]


def test_unknown_method_lists_valid_names(capsys):
    assert main(["run", "--method", "nope", "--scenario", "mtil-micro"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'nope'" in err and "finetune" in err and "lora" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_scenario(capsys):
    assert main(["run", "--method", "lora", "--scenario", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'nope'" in err and "mtil-micro" in err and "cil-micro" in err


def test_unknown_set_key_names_valid_keys(capsys):
    assert main(["run", "--method", "lora", "--scenario", "mtil-micro", "--set", "rnak=4"]) == 2
    err = capsys.readouterr().err
    assert "rnak" in err and "rank" in err and "valid keys" in err


def test_bad_backbone_and_weights(capsys, tmp_path):
    assert main(["run", "--method", "zeroshot", "--scenario", "mtil-micro", "--backbone", "NoSuchNet",
                 "--out", str(tmp_path)]) == 2
    assert "unknown backbone" in capsys.readouterr().err
    missing = tmp_path / "weights.pt"
    assert main(["run", "--method", "zeroshot", "--scenario", "mtil-micro", "--backbone", "ViT-B-16",
                 "--pretrained", str(missing), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "weights file not found" in err and str(missing) in err


def test_list_shows_methods_and_scenarios(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("zeroshot", "finetune", "lora", "mtil-micro", "cil-micro"):
        assert name in out
    assert "built-in" in out


def test_show_rerenders_results(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--method", "zeroshot", "--scenario", "mtil-micro", "--backbone", "tiny-test", "--quiet",
                 "--device", "cpu", "--out", str(out), *_sets(TINY_RUN)]) == 0
    capsys.readouterr()
    f = out / "mtil-micro" / "zeroshot" / "seed0.json"
    assert main(["show", str(f)]) == 0
    shown = capsys.readouterr().out
    assert "Transfer" in shown and "digits" in shown and "colours" in shown


def test_show_rejects_malformed_files(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["show", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert main(["show", str(other)]) == 2
    assert "not a cl-bench results file" in capsys.readouterr().err


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "cl_bench", "run", "--method", "nope", "--scenario", "x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown method" in r.stderr


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """pip-install the demo plugin package (no network, no build isolation), uninstall afterwards. It is
    built from a copy so the source tree stays clean."""
    import shutil

    src = tmp_path_factory.mktemp("plugin") / "pkg"
    shutil.copytree(PLUGIN, src)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)],
                   check=True, timeout=300, env={**os.environ, "PIP_CONSTRAINT": ""})
    registry.clear_cache()
    import importlib

    importlib.invalidate_caches()
    yield
    subprocess.run([*pip, "uninstall", "-y", "-q", "clbench-demo-plugin"], check=True, timeout=300)
    registry.clear_cache()


def test_third_party_plugin_is_listed_and_runs(installed_plugin, tmp_path):
    listing = subprocess.run([sys.executable, "-m", "cl_bench", "list"], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert listing.returncode == 0
    assert "demo-headonly" in listing.stdout and "demo-colours" in listing.stdout
    assert "clbench-demo-plugin" in listing.stdout  # its source is the plugin distribution
    code = main(["run", "--method", "demo-headonly", "--scenario", "demo-colours", "--quiet", "--device", "cpu",
                 "--out", str(tmp_path)])
    assert code == 0
    res = json.loads((tmp_path / "demo-colours" / "demo-headonly" / "seed0.json").read_text())
    assert res["status"] == "finished" and res["switches"] == {"trained": "visual.ln_post"}
    assert res["per_task"][0]["trainable_params"] == 2 * 32  # ln_post weight + bias of width 32


def test_worked_example_plugin_runs_and_matches_the_doc(installed_plugin, tmp_path):
    """docs/adding-a-method.md shows tests/plugin_pkg's L2-SP module verbatim, and that module runs."""
    doc = (Path(__file__).parents[1] / "docs" / "adding-a-method.md").read_text()
    assert (PLUGIN / "clbench_demo_plugin" / "l2sp.py").read_text() in doc
    code = main(["run", "--method", "demo-l2sp", "--scenario", "demo-colours", "--quiet", "--device", "cpu",
                 "--out", str(tmp_path), "--set", "iterations=3"])
    assert code == 0
    res = json.loads((tmp_path / "demo-colours" / "demo-l2sp" / "seed0.json").read_text())
    assert res["status"] == "finished" and res["switches"] == {"l2sp": 0.01}
    assert res["per_task"][0]["extra"]["l2sp_penalty_last_step"] > 0  # the weights moved from the anchor
    assert res["config"]["params"]["lr"] == 6e-4  # the micro profile's value


def test_results_files_are_written_with_normal_permissions(tmp_path):
    import stat

    from cl_bench.results import write_results

    f = tmp_path / "r.json"
    old = os.umask(0o022)
    try:
        write_results({"a": 1}, f)
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
