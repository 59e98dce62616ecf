"""Leaderboard generation from hand-written results files (tests/fixtures/leaderboard/).

micro/    mtil-micro, 3 tasks: finetune seeds 0-2 (each matrix = seed 0's + 2·seed), lora seeds 0-1 and an
          interrupted seed 2 (with absurd costs, so averaging it in would show), zeroshot seed 0.
conflict/ finetune seed 3 with another pretrained tag.
mtil/     mtil Order-I, ViT-B-16/openai/ensemble: zscl seeds 0-1 (60 above, 90 on, 80 below the diagonal;
          seed 1 is +2 everywhere), zeroshot seed 0 (ZSCL-nb's zero-shot accuracies in every row).
cil/      cil-cifar100, steps 10, prompts single: moe-adapters seed 0 with A_t = 100 - t.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from cl_bench import reference
from cl_bench.errors import UserError
from cl_bench.leaderboard import (
    CSV_COLUMNS,
    Cell,
    build_leaderboard,
    format_cell,
    load_runs,
    summary,
    to_csv,
    to_markdown,
)
from cl_bench.render import print_leaderboard, to_rich
from cl_bench.results import compute_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "leaderboard"


@pytest.fixture
def fixtures_cwd(monkeypatch):
    """Run from the fixtures folder: paths in the output are then the short ones of the expected files."""
    monkeypatch.chdir(FIXTURES)


def _runs(*dirs):
    return load_runs([FIXTURES / d for d in dirs])


def _edited(tmp_path, folder, edit, which=lambda record: True):
    """The runs of a fixture folder after ``edit`` changed the chosen files on disk (a copy under tmp_path):
    the leaderboard compares what the results files say, through their setting blocks."""
    shutil.copytree(FIXTURES / folder, tmp_path / folder)
    for f in sorted((tmp_path / folder).rglob("seed*.json")):
        record = json.loads(f.read_text())
        if which(record):
            edit(record)
            f.write_text(json.dumps(record))
    return load_runs([tmp_path / folder])


def _table(lb, key):
    return next(t for t in lb.tables if t.key == key)


def _row(table, label):
    return next(r for r in table.rows if r.label == label)


# ---------------------------------------------------------------------------------------------- fixtures


def test_fixture_metrics_match_compute_metrics():
    """The hand-written metrics in the fixture files are what cl_bench.results computes."""
    for run in _runs("micro", "mtil", "cil"):
        if run["status"] != "finished":
            continue
        expected = compute_metrics(run)
        for key in ("transfer", "avg", "last"):
            if key in expected and isinstance(expected[key], dict):
                assert run["metrics"][key]["mean"] == pytest.approx(expected[key]["mean"])
                assert run["metrics"][key]["per_task"] == pytest.approx(expected[key]["per_task"])
        assert run["metrics"]["bwt"] == pytest.approx(expected["bwt"])


# ---------------------------------------------------------------------------------------------- markdown


def test_markdown_micro_equals_expected_file(fixtures_cwd):
    lb = build_leaderboard(load_runs(["micro"]))
    assert to_markdown(lb) == (FIXTURES / "expected_micro.md").read_text()


def test_markdown_mtil_with_reported_rows_equals_expected_file(fixtures_cwd):
    lb = build_leaderboard(load_runs(["mtil"]))
    assert to_markdown(lb) == (FIXTURES / "expected_mtil.md").read_text()


def test_markdown_is_deterministic_whatever_the_input_order(fixtures_cwd):
    runs = load_runs(["micro"])
    assert to_markdown(build_leaderboard(runs)) == to_markdown(build_leaderboard(list(reversed(runs))))


def test_expected_micro_cells_by_hand():
    """A few cells of expected_micro.md, recomputed here from the fixture matrices."""
    text = (FIXTURES / "expected_micro.md").read_text()
    # finetune Transfer on "shapes": R[0][1] = 40, 42, 44 over seeds -> mean 42, sample std 2.
    assert "| finetune | – | 42.0 ± 2.0 | 27.0 ± 2.0 | 34.5 ± 2.0 (n=3) |" in text
    # lora Last: rows [84, 80, 91] and [83, 82, 93] -> means 85 and 86 -> 85.5 ± 0.707.
    assert "| lora | 83.5 ± 0.7 | 81.0 ± 1.4 | 92.0 ± 1.4 | 85.5 ± 0.7 (n=2) |" in text
    # zeroshot, one seed: no std.
    assert "| zeroshot | – | 40.0 | 20.0 | 30.0 (n=1) |" in text
    # finetune wall time per task: (10+11+12 + 10.5+11.5+12.5 + 9+10+11) / 9 = 10.83.
    assert "| finetune | 3 | 7,600,000 | 1530.5 | 10.8 |" in text


# ---------------------------------------------------------------------------------------------- statistics


def test_mean_and_sample_std_over_seeds_hand_checked():
    lb = build_leaderboard(_runs("micro"))
    # lora Avg.: seed 0 = (259 + 213 + 151) / 9 = 623/9, seed 1 = (260 + 216 + 153) / 9 = 629/9.
    cell = _row(_table(lb, "avg"), "lora").summaries[0]
    assert cell.mean == pytest.approx((623 / 9 + 629 / 9) / 2)
    assert cell.std == pytest.approx(abs(629 / 9 - 623 / 9) / math.sqrt(2))  # ddof=1 with two values
    assert cell.n == 2
    assert format_cell(cell, with_n=True) == "69.6 ± 0.5 (n=2)"
    # finetune Transfer on task 2: mean(20,30), mean(22,32), mean(24,34) = 25, 27, 29 -> 27 ± 2.
    cell = _row(_table(lb, "transfer"), "finetune").cells[2]
    assert (cell.mean, cell.std, cell.n) == (pytest.approx(27.0), pytest.approx(2.0), 3)
    # Transfer is undefined for the first task.
    assert _row(_table(lb, "transfer"), "finetune").cells[0] is None
    # One seed: the std is omitted.
    cell = _row(_table(lb, "last"), "zeroshot").summaries[0]
    assert cell.std is None and cell.n == 1 and cell.mean == pytest.approx(140 / 3)


def test_format_cell():
    assert format_cell(Cell(65.34, 0.41, 3), with_n=True) == "65.3 ± 0.4 (n=3)"
    assert format_cell(Cell(65.34, 0.41, 3)) == "65.3 ± 0.4"
    assert format_cell(Cell(65.34, None, 1), with_n=True) == "65.3 (n=1)"
    assert format_cell(Cell(68.1)) == "68.1"
    assert format_cell(None) == "–"


def test_costs_per_method():
    costs = {c.method: c for c in build_leaderboard(_runs("micro")).costs}
    assert costs["finetune"].trainable_params == 7_600_000
    assert costs["finetune"].peak_memory_mb == 1530.5
    assert costs["finetune"].wall_time_per_task_s == pytest.approx(97.5 / 9)
    assert costs["lora"].wall_time_per_task_s == pytest.approx(43.2 / 6)


# ---------------------------------------------------------------------------------------------- refusals


def test_unfinished_runs_are_listed_not_averaged(fixtures_cwd):
    lb = build_leaderboard(load_runs(["micro"]))
    [excluded] = lb.excluded
    assert (excluded.path, excluded.method, excluded.seed, excluded.status) == (
        "micro/mtil-micro/lora/seed2.json", "lora", 2, "interrupted")
    assert (excluded.tasks_done, excluded.tasks_total) == (1, 3)
    assert _row(_table(lb, "last"), "lora").n == 2
    # Its absurd costs (99999 MB, 600 s) stay out of the cost columns.
    lora = next(c for c in lb.costs if c.method == "lora")
    assert (lora.n, lora.peak_memory_mb, lora.trainable_params) == (2, 960.0, 98304)
    assert "| micro/mtil-micro/lora/seed2.json | lora | 2 | interrupted | 1/3 |" in to_markdown(lb)


def test_only_unfinished_runs_is_an_error():
    runs = [r for r in _runs("micro") if r["status"] != "finished"]
    with pytest.raises(UserError, match=r"no finished runs for scenario 'mtil-micro'.*seed2\.json"):
        build_leaderboard(runs)


def test_incompatible_files_refused_naming_both(fixtures_cwd):
    runs = load_runs(["micro", "conflict"])
    with pytest.raises(UserError) as err:
        build_leaderboard(runs)
    assert str(err.value) == (
        "micro/mtil-micro/finetune/seed0.json and conflict/mtil-micro/finetune/seed3.json are not "
        "comparable: pretrained tag differs ('micro-v1' vs 'micro-v2'); build one leaderboard per setting")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field, mutate", [
    ("scenario version", lambda r: r.update(scenario_version=2)),
    ("backbone", lambda r: r["backbone"].update(name="ViT-L-14")),
    ("pretrained tag", lambda r: r["backbone"].update(pretrained="laion2b")),
    ("prompt convention", lambda r: r["backbone"].update(prompts="ensemble")),
    ("task list", lambda r: r.update(tasks=["shapes", "colours", "glyphs"])),
])
def test_every_incompatibility_is_refused(field, mutate, tmp_path):
    runs = _edited(tmp_path, "micro", mutate, lambda r: r["method"] == "zeroshot")
    message = rf"finetune/seed0\.json and .*zeroshot/seed0\.json are not comparable: {field} differs"
    with pytest.raises(UserError, match=message):
        build_leaderboard(runs)


def test_same_method_and_seed_twice_is_refused():
    runs = _runs("micro")
    twin = copy.deepcopy(runs[0])
    twin["_path"] = "elsewhere/seed0.json"
    with pytest.raises(UserError, match=r"both finetune seed 0; pass each run once"):
        build_leaderboard(runs + [twin])


def _lora_seed1(record):
    return record["method"] == "lora" and record["seed"] == 1


def test_different_switches_within_a_method_are_refused(tmp_path):
    runs = _edited(tmp_path, "micro", lambda r: r.update(switches={"merge_after_task": False}), _lora_seed1)
    with pytest.raises(UserError, match=r"\(lora\) cannot be averaged: method switch merge_after_task \(True vs "
                                        r"False\) differs"):
        build_leaderboard(runs)


def test_operational_keys_average_together_hyper_parameters_do_not(tmp_path):
    def operational(record):
        record["config"]["params"].update(eval_batch_size=7, num_workers=3)
        record["config"].update(device="cuda", out="/somewhere/else")

    runs = _edited(tmp_path / "a", "micro", operational, _lora_seed1)
    lb = build_leaderboard(runs)
    assert _row(_table(lb, "last"), "lora").n == 2
    assert "/somewhere" not in to_markdown(lb)
    runs = _edited(tmp_path / "b", "micro", lambda r: r["config"]["params"].update(lr=0.5), _lora_seed1)
    with pytest.raises(UserError, match=r"\(lora\) cannot be averaged: hyper-parameter lr \(.+ vs 0.5\) differs"):
        build_leaderboard(runs)


def test_several_scenarios_need_a_choice():
    runs = _runs("micro", "mtil")
    with pytest.raises(UserError, match=r"2 scenarios \(mtil, mtil-micro\); choose one with --scenario"):
        build_leaderboard(runs)
    assert build_leaderboard(runs, scenario="mtil").scenario == "mtil"
    with pytest.raises(UserError, match=r"no results for scenario 'mtil-order2'"):
        build_leaderboard(runs, scenario="mtil-order2")


def test_load_runs_searches_folders_and_reads_each_file_once(tmp_path):
    runs = load_runs([FIXTURES / "micro", FIXTURES / "micro/mtil-micro/lora/seed0.json"])
    assert len(runs) == 7
    with pytest.raises(UserError, match="no seed\\*.json results files under"):
        load_runs([tmp_path])


# ---------------------------------------------------------------------------------------------- reference


def test_reference_data_has_the_published_means():
    zscl = {r.scenario: r for r in reference.REFERENCE_ROWS if r.label == "ZSCL"}
    assert dict(zscl["mtil"].means) == {"transfer": 68.1, "avg": 75.4, "last": 83.6}
    assert dict(zscl["mtil-order2"].means) == {"transfer": 64.2, "avg": 74.5, "last": 83.4}
    assert zscl["mtil"].source == "ZSCL-nb" and reference.SOURCES["ZSCL-nb"].url.endswith("results.ipynb")
    assert (zscl["mtil"].backbone, zscl["mtil"].pretrained, zscl["mtil"].prompts) == (
        "ViT-B-16", "openai", "ensemble")
    cil = {(r.scenario, r.params["steps"]): r.means
           for r in reference.REFERENCE_ROWS if r.scenario.startswith("cil")}
    assert set(cil) == {("cil-cifar100", 10), ("cil-cifar100", 20), ("cil-cifar100", 50),
                        ("cil-tinyimagenet", 5), ("cil-tinyimagenet", 10), ("cil-tinyimagenet", 20)}
    assert cil[("cil-tinyimagenet", 10)] == {"avg": 80.23, "last": 76.35}
    assert len(reference.reference_rows("mtil")) == 13 and len(reference.reference_rows("mtil-fewshot")) == 3


def test_reference_cells_agree_with_their_printed_means():
    """A transcription check: printed means are within rounding of the mean of the printed cells."""
    for row in reference.REFERENCE_ROWS:
        if row.tasks is None:
            continue
        for metric, cells in row.per_task.items():
            assert len(cells) == len(row.tasks) == 11
            values = [v for v in cells if v is not None]
            if not row.note:  # the one flagged DPW row prints a mean that its cells do not give
                assert sum(values) / len(values) == pytest.approx(row.means[metric], abs=0.08), (row, metric)


def test_mtil_leaderboard_shows_reported_rows_and_deltas():
    lb = build_leaderboard(_runs("mtil"))
    for key, published in (("transfer", 68.1), ("avg", 75.4), ("last", 83.6)):
        table = _table(lb, key)
        reported = _row(table, "ZSCL (reported)")
        assert reported.kind == "reported" and reported.source == "ZSCL-nb"
        assert reported.summaries[0] == Cell(published)
        assert len([r for r in table.rows if r.kind == "reported"]) == 13
    # zscl Transfer: 60 and 62 -> 61.0; Avg.: 790/11 and 812/11; Last: 890/11 and 912/11.
    ours = {key: _row(_table(lb, key), "zscl") for key in ("transfer", "avg", "last")}
    assert ours["transfer"].deltas[0].value == pytest.approx(61.0 - 68.1)
    assert ours["avg"].deltas[0].value == pytest.approx(801 / 11 - 75.4)
    assert ours["last"].deltas[0].value == pytest.approx(901 / 11 - 83.6)
    assert ours["last"].deltas[0].versus == "ZSCL [ZSCL-nb]"
    # Reported cells line up with our columns by dataset name: ZSCL's Last on SUN397 is 80.2.
    assert _row(_table(lb, "last"), "ZSCL (reported)").cells[10] == Cell(80.2)
    assert "| zscl | – | 61.0 ± 1.4 |" in to_markdown(lb)


def test_no_delta_when_the_prompt_convention_differs(tmp_path):
    lb = build_leaderboard(_edited(tmp_path, "mtil", lambda r: r["backbone"].update(prompts="single")))
    assert all(d is None for t in lb.tables for r in t.rows for d in r.deltas)
    assert any(r.label == "ZSCL (reported)" for r in _table(lb, "last").rows)  # still shown as a target
    mismatch = "ensemble prompts; these runs use ViT-B-16 (openai) with single prompts"
    assert any(mismatch in note for note in lb.notes)
    assert "Δ" not in to_markdown(lb).split("## Transfer")[1].split("\n")[2]


def test_cil_reference_rows_follow_the_steps_setting(tmp_path):
    lb = build_leaderboard(_runs("cil"))
    [table] = lb.tables
    assert table.summary_columns == ["Avg.", "Last"]
    reported = [r for r in table.rows if r.kind == "reported"]
    assert [r.summaries for r in reported] == [[Cell(85.21), Cell(77.52)]]
    ours = _row(table, "moe-adapters")
    assert [c.mean for c in ours.cells] == pytest.approx([100 - t for t in range(10)])
    assert [d.value for d in ours.deltas] == pytest.approx([95.5 - 85.21, 91.0 - 77.52])
    runs = _edited(tmp_path, "cil", lambda r: r["config"]["params"].update(steps=20))
    reported = [r for r in build_leaderboard(runs).tables[0].rows if r.kind == "reported"]
    assert [r.summaries for r in reported] == [[Cell(83.72), Cell(76.20)]]


def test_cil_summary_has_avg_and_last_and_ranks_by_last():
    runs = _runs("cil")
    second = copy.deepcopy(runs[0])
    second["method"], second["metrics"]["last"] = "lora", runs[0]["metrics"]["last"] + 1.0
    header, rows = summary(build_leaderboard([runs[0], second]))
    assert header[:3] == ["Method", "Avg.", "Last"]
    assert [r[0] for r in rows] == ["lora", "moe-adapters"]
    assert rows[1][1:3] == ["95.5", "91.0"] and rows[0][2] == "92.0"


def test_dataset_names_align_across_spellings():
    assert reference.dataset_key("Cars") == reference.dataset_key("StanfordCars")
    assert reference.dataset_key("Oxford-IIIT Pet") == reference.dataset_key("OxfordPet")
    assert reference.dataset_key("Caltech101") != reference.dataset_key("CIFAR100")


# ---------------------------------------------------------------------------------------------- csv, rich


def test_csv_columns_and_rows():
    lb = build_leaderboard(_runs("micro"))
    rows = list(csv.DictReader(io.StringIO(to_csv(lb))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    # 3 methods x (3 tables x 4 columns) minus the first task's undefined Transfer.
    assert len(rows) == 3 * (3 * 4 - 1)
    lora = next(r for r in rows if r["method"] == "lora" and r["table"] == "avg" and r["column"] == "Mean")
    assert float(lora["mean"]) == pytest.approx(1252 / 18)
    assert float(lora["std"]) == pytest.approx((6 / 9) / math.sqrt(2))
    assert lora["n"] == "2" and lora["kind"] == "ours" and lora["delta"] == ""
    assert (lora["trainable_params"], float(lora["peak_memory_mb"])) == ("98304", 960.0)
    assert float(lora["wall_time_per_task_s"]) == pytest.approx(7.2)
    zeroshot = next(r for r in rows if r["method"] == "zeroshot" and r["column"] == "shapes")
    assert zeroshot["std"] == "" and zeroshot["n"] == "1"


def test_csv_reported_rows_and_deltas():
    rows = list(csv.DictReader(io.StringIO(to_csv(build_leaderboard(_runs("mtil"))))))
    zscl = next(r for r in rows
                if r["label"] == "zscl" and r["table"] == "transfer" and r["column"] == "Mean")
    assert float(zscl["delta"]) == pytest.approx(61.0 - 68.1) and zscl["delta_vs"] == "ZSCL [ZSCL-nb]"
    reported = next(r for r in rows if r["label"] == "ZSCL (reported)" and r["table"] == "last"
                    and r["column"] == "Mean")
    assert (reported["kind"], reported["source"], float(reported["mean"])) == ("reported", "ZSCL-nb", 83.6)
    assert reported["n"] == "" and reported["trainable_params"] == ""


def test_rich_tables_render():
    lb = build_leaderboard(_runs("mtil"))
    tables = to_rich(lb)
    assert len(tables) == 1 + 3 + 1  # summary, Transfer, Avg., Last, cost
    console = Console(record=True, width=400)
    print_leaderboard(lb, console)
    text = console.export_text()
    assert "61.0 ± 1.4 (n=2)" in text and "ZSCL (reported)" in text and "-7.1" in text
