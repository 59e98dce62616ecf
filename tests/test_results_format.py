"""Results schema 2 (docs/results-format.md): the setting block, declared operational keys, and schema-1
files (the published runs are schema 1) still shown and tabulated."""

import json
import shutil
from pathlib import Path

import pytest

from cl_bench.cli import main
from cl_bench.config import OPERATIONAL_KEYS, operational_keys, same_config
from cl_bench.errors import UserError
from cl_bench.leaderboard import build_leaderboard, load_runs, to_markdown
from cl_bench.results import SCHEMA_VERSION, compute_metrics, load_results, new_results, write_results

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_V1 = ROOT / "leaderboards" / "runs" / "cil-micro" / "lora" / "seed0.json"
FIXTURES = Path(__file__).parent / "fixtures" / "leaderboard"


class RefData:
    """A method declaring its own operational keys, the way a method class does."""

    OPERATIONAL = ("ref_images",)


def _record(seed=0, params=None, switches=None, operational=frozenset(), matrix=((60.0, 20.0), (50.0, 70.0))):
    params = {"steps": 2, "lr": 1e-3, "eval_batch_size": 256, "ref_images": "/data/coco", **(params or {})}
    res = new_results(
        method="zscl", scenario="cil-toy", scenario_version="1", protocol="cil", seed=seed,
        config={"method": "zscl", "scenario": "cil-toy", "backbone": "tiny", "pretrained": None, "seed": seed,
                "device": "cpu", "out": "/home/someone/results", "params": params},
        backbone={"name": "tiny", "pretrained": "tiny-abc", "prompts": "single"}, versions={}, device="cpu",
        tasks=["step0", "step1"], test_sizes=[10, 10],
        switches={"ref_images": params["ref_images"], "w_image": 1.0, **(switches or {})},
        operational=operational, scenario_keys=("steps",))
    rows = [[v if i <= t else None for i, v in enumerate(row)] for t, row in enumerate(matrix)]
    res.update(status="finished", zero_shot=[10.0, 10.0], matrix=rows,
               per_task=[{"task": t, "wall_time_s": 1.0} for t in res["tasks"]])
    res["metrics"] = compute_metrics(res)
    return res


def _write(tmp_path, *records):
    for r in records:
        write_results(r, tmp_path / r["scenario"] / r["method"] / f"seed{r['seed']}.json")
    return load_runs([tmp_path])


# ---------------------------------------------------------------------------------------------- setting


def test_setting_holds_what_must_match_and_leaves_operational_keys_out():
    operational = operational_keys(RefData, None)
    assert operational == OPERATIONAL_KEYS | {"ref_images"}
    res = _record(operational=operational)
    assert res["schema_version"] == SCHEMA_VERSION == 2
    assert res["setting"] == {
        "scenario": {"name": "cil-toy", "version": "1", "protocol": "cil", "tasks": ["step0", "step1"],
                     "params": {"steps": 2}},
        "backbone": {"name": "tiny", "pretrained": "tiny-abc", "prompts": "single", "precision": "fp32"},
        "method": {"name": "zscl", "params": {"lr": 1e-3}, "switches": {"w_image": 1.0}},
    }
    assert res["operational_keys"] == sorted(operational)
    # Undeclared, the same key is a hyper-parameter like any other.
    assert _record()["setting"]["method"]["params"]["ref_images"] == "/data/coco"


def test_runs_differing_only_in_operational_keys_average_and_no_path_is_published(tmp_path):
    operational = operational_keys(RefData, None)
    a = _record(seed=0, operational=operational)
    b = _record(seed=1, params={"ref_images": "/mnt/other/coco", "eval_batch_size": 64}, operational=operational,
                matrix=((62.0, 20.0), (52.0, 72.0)))
    lb = build_leaderboard(_write(tmp_path, a, b))
    assert lb.tables[0].rows[0].n == 2 and lb.provenance.params == {"steps": 2}
    text = to_markdown(lb)
    assert "/data" not in text and "/mnt" not in text and "/home" not in text and "ref_images" not in text
    assert "zscl: w_image=1.0" in text


@pytest.mark.parametrize("change, message", [
    ({"params": {"lr": 5e-4}}, r"hyper-parameter lr \(0.001 vs 0.0005\) differs"),
    ({"switches": {"w_image": 2.0}}, r"method switch w_image \(1.0 vs 2.0\) differs"),
])
def test_a_hyper_parameter_difference_is_refused_naming_the_key(tmp_path, change, message):
    operational = operational_keys(RefData, None)
    a, b = _record(seed=0, operational=operational), _record(seed=1, operational=operational, **change)
    with pytest.raises(UserError, match=rf"\(zscl\) cannot be averaged: {message}; re-run with the same options"):
        build_leaderboard(_write(tmp_path, a, b))


def test_a_scenario_parameter_difference_splits_tables(tmp_path):
    a = _record(seed=0)
    b = _record(seed=0, params={"steps": 3})
    b["method"] = b["setting"]["method"]["name"] = "lora"
    with pytest.raises(UserError, match=r"not comparable: scenario parameter steps differs \(3 vs 2\)"):
        build_leaderboard(_write(tmp_path, a, b))


def test_resume_check_reads_the_same_declaration():
    a = {"method": "zscl", "seed": 0, "device": "cpu", "out": "x", "params": {"lr": 1, "ref_images": "/a",
                                                                               "num_workers": 0}}
    b = {**a, "device": "cuda", "out": "y", "params": {**a["params"], "ref_images": "/b", "num_workers": 4}}
    assert same_config(a, b) == ["params.ref_images"]  # not declared operational: refused
    assert same_config(a, b, operational_keys(RefData, None)) == []
    assert same_config(a, {**b, "seed": 1, "params": {**b["params"], "lr": 2}},
                       operational_keys(RefData, None)) == ["seed", "params.lr"]


# ---------------------------------------------------------------------------------------------- schema 1


def test_a_schema_1_file_is_read_as_schema_2_and_marked():
    raw = json.loads(PUBLISHED_V1.read_text())
    assert raw["schema_version"] == 1 and "setting" not in raw
    res = load_results(PUBLISHED_V1)
    assert (res["schema_version"], res["converted_from"]) == (2, 1)
    assert res["matrix"] == raw["matrix"] and res["config"] == raw["config"]
    # Scenario parameters and the method's are told apart by the installed scenario's defaults.
    assert res["setting"]["scenario"]["params"] == {"eval_split": "test", "steps": 5, "test_per_class": 40,
                                                    "train_per_class": 200}
    assert res["setting"]["method"]["params"]["lr"] == 0.004
    assert not OPERATIONAL_KEYS & set(res["setting"]["method"]["params"])


def test_a_schema_1_file_still_shows(capsys):
    assert main(["show", str(PUBLISHED_V1)]) == 0
    shown = capsys.readouterr().out
    assert "results schema 1" in shown and "step0" in shown and "Avg." in shown and "Last" in shown


def test_schema_1_and_2_files_tabulate_together(tmp_path, monkeypatch):
    """The fixture runs (schema 1) rewritten as schema 2 give the same leaderboard, also mixed."""
    shutil.copytree(FIXTURES / "micro", tmp_path / "micro")
    files = sorted((tmp_path / "micro").rglob("seed*.json"))
    for f in files[::2]:
        res = load_results(f)
        write_results({k: v for k, v in res.items() if k != "converted_from"}, f)
    assert {load_results(f)["schema_version"] for f in files} == {2}
    assert sum("converted_from" in load_results(f) for f in files) == len(files) // 2
    monkeypatch.chdir(tmp_path)
    assert to_markdown(build_leaderboard(load_runs(["micro"]))) == (FIXTURES / "expected_micro.md").read_text()


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(schema_version=3), "schema version 3, this cl-bench reads 1 and 2"),
    (lambda r: r.update(protocol="x-tail"), "field protocol must be one of cil, mtil, xtail"),
    (lambda r: r.pop("setting"), "missing keys ['setting']"),
    (lambda r: r.update(setting={"scenario": {}}), "field setting must be a mapping with scenario, backbone"),
])
def test_malformed_schema_2_files_are_refused(tmp_path, edit, message):
    res = _record()
    edit(res)
    f = tmp_path / "seed0.json"
    write_results(res, f)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_results(f)
