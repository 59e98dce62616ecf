"""Bad input and damaged stored files: one line on stderr naming the key or file, exit code 2, no traceback,
and never a results file that claims `finished`."""

import json

import pytest
import torch
from helpers import TINY_RUN

from cl_bench.cli import main
from cl_bench.results import load_results

BASE = ["run", "--method", "finetune", "--scenario", "mtil-micro", "--backbone", "tiny-test", "--device", "cpu",
        "--quiet", *[x for s in [*TINY_RUN, "iterations=2"] for x in ("--set", s)]]


def sets(*kv):
    return [x for s in kv for x in ("--set", s)]


def refused(argv, capsys, *names):
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def no_finished_results(out):
    for f in out.rglob("seed*.json"):
        assert json.loads(f.read_text())["status"] != "finished", f


@pytest.mark.parametrize("extra,names", [
    (sets("lr=nan"), ["lr", "nan", "finite number > 0"]),
    (sets("lr=-0.001"), ["lr", "-0.001", "> 0"]),
    (sets("batch_size=0"), ["batch_size", "0", "positive integer"]),
    (sets("epochs=-1", "iterations=0"), ["epochs", "-1", "positive integer"]),
    (sets("iterations=-3"), ["iterations", "-3", ">= 0"]),
    (sets("label_smoothing=1.5"), ["label_smoothing", "[0, 1)"]),
    (sets("epochs=[1]", "iterations=0"), ["epochs", "1 entries", "2 tasks"]),
    (["--seed", str(2**64)], ["seed", str(2**64), "2**32"]),
    (["--seed", str(10**17)], ["seed", "2**32"]),
    (["--seed", "-1"], ["seed", "-1"]),
])
def test_bad_values_are_refused_before_anything_runs(extra, names, tmp_path, capsys):
    out = tmp_path / "out"
    refused([*BASE, "--out", str(out), *extra], capsys, *names)
    no_finished_results(out)


def test_cil_steps_zero_is_refused(tmp_path, capsys):
    refused(["run", "--method", "zeroshot", "--scenario", "cil-micro", "--backbone", "tiny-test", "--quiet",
             "--out", str(tmp_path), *sets("steps=0")], capsys, "steps", "positive integer")


def test_non_utf8_config_file(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(b"lr: 1e-3\n# \xff\xfe caf\xe9\n")
    refused([*BASE, "--out", str(tmp_path / "out"), "--config", str(cfg)], capsys, str(cfg), "UTF-8")


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    refused([*BASE, "--out", str(f)], capsys, "--out", str(f), "is a file")


def test_out_is_not_writable(tmp_path, capsys):
    # /proc refuses new folders even for root (a chmod'ed folder would not stop root)
    refused([*BASE, "--out", "/proc/cl-bench-results"], capsys, "--out", "not writable")


def _one_finished_task(out):
    from cl_bench import registry
    from cl_bench.config import make_config, parse_set
    from cl_bench.runner import Run

    cfg = make_config(method=registry.get_method("finetune"), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                      overrides=parse_set([*TINY_RUN, "iterations=2"]))
    run = Run(cfg, log=lambda *a: None)
    run.execute(stop_after=1)
    return run


def test_results_with_strings_in_the_matrix(tmp_path, capsys):
    run = _one_finished_task(tmp_path)
    res = json.loads(run.path.read_text())
    res["matrix"][0][0] = "87.5"
    run.path.write_text(json.dumps(res))
    refused([*BASE, "--out", str(tmp_path), "--resume"], capsys, str(run.path), "matrix")
    refused(["show", str(run.path)], capsys, str(run.path), "matrix")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_checkpoint(damage, tmp_path, capsys):
    run = _one_finished_task(tmp_path)
    data = run.ckpt.read_bytes()
    run.ckpt.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00garbage" * 100)
    refused([*BASE, "--out", str(tmp_path), "--resume"], capsys, str(run.ckpt), "unreadable")
    assert load_results(run.path)["status"] != "finished"


def test_checkpoint_of_another_seed_is_refused(tmp_path, capsys):
    """The silently-wrong case: seed 1's checkpoint copied over seed 0's was accepted and gave other numbers."""
    run0 = _one_finished_task(tmp_path)
    other = torch.load(run0.ckpt, weights_only=False)
    other["identity"]["seed"] = 1
    torch.save(other, run0.ckpt)
    refused([*BASE, "--out", str(tmp_path), "--resume"], capsys, str(run0.ckpt), "another run", "seed")
    assert load_results(run0.path)["status"] != "finished"


def test_unexpected_errors_are_one_line_and_mark_the_run_failed(tmp_path, capsys, monkeypatch):
    from cl_bench.runner import Run

    def broken(self, t, *a):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(Run, "run_task", broken)
    code = main([*BASE, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "ZeroDivisionError: simulated bug" in err and "--debug" in err
    res = load_results(tmp_path / "mtil-micro" / "finetune" / "seed0.json")
    assert res["status"] == "failed" and "simulated bug" in res["error"]
    with pytest.raises(ZeroDivisionError):
        main(["--debug", *BASE, "--out", str(tmp_path / "again")])
