"""Every built-in method on a tiny real scenario (real open_clip model, real Avalanche strategy)."""

import json

import pytest
import torch
from avalanche.core import SupervisedPlugin
from helpers import TINY_RUN

from cl_bench import registry
from cl_bench.cli import main
from cl_bench.config import make_config, parse_set
from cl_bench.results import load_results
from cl_bench.runner import Run

FAST = {"finetune": ["iterations=3"], "lora": ["iterations=2", "rank=2"], "zeroshot": []}


def _run(method, out, scenario="mtil-micro", extra=(), seed=0, **kw):
    sets = [*TINY_RUN, *FAST.get(method, [])] if scenario == "mtil-micro" else \
        ["train_per_class=4", "test_per_class=3", "steps=2", *FAST.get(method, [])]
    cfg = make_config(method=registry.get_method(method), scenario=registry.get_scenario(scenario),
                      backbone="tiny-test", pretrained=None, seed=seed, device="cpu", out=str(out),
                      overrides=parse_set([*sets, *extra]))
    run = Run(cfg, log=lambda *a: None)
    return run, run.execute(**kw)


@pytest.mark.parametrize("method", ["zeroshot", "finetune", "lora"])
def test_builtin_method_runs_two_tasks_and_writes_valid_results(method, out_dir):
    run, res = _run(method, out_dir)
    assert run.path == out_dir / "mtil-micro" / method / "seed0.json"
    disk = load_results(run.path)
    assert disk["status"] == "finished" and disk["tasks"] == ["digits", "colours"]
    assert len(disk["matrix"]) == 2 and all(len(r) == 2 for r in disk["matrix"])
    assert all(0 <= v <= 100 for row in disk["matrix"] for v in row)
    assert disk["metrics"]["last"]["per_task"] == disk["matrix"][-1]
    assert len(disk["per_task"]) == 2 and disk["per_task"][0]["wall_time_s"] > 0
    if method == "zeroshot":
        assert disk["matrix"][0] == disk["zero_shot"] == disk["matrix"][1]
        assert disk["per_task"][0]["trainable_params"] == 0
    else:
        assert disk["per_task"][0]["trainable_params"] > 0
    assert not run.ckpt.exists()  # checkpoints are removed once the run is finished


def test_lora_trains_only_adapters(out_dir):
    run, res = _run("lora", out_dir)
    # q,k,v,o x (A: d x r + B: r x d) x blocks, both towers (tiny-test: width 32, 2+2 blocks, r=2)
    assert res["per_task"][0]["trainable_params"] == 4 * (32 * 2 + 2 * 32) * 4
    assert res["switches"]["targets"] == ["q", "k", "v", "o"]


def test_cil_protocol_matrix_is_lower_triangular(out_dir):
    run, res = _run("finetune", out_dir, scenario="cil-micro")
    R = res["matrix"]
    assert R[0][1] is None and R[1][0] is not None and R[1][1] is not None
    assert res["metrics"]["last"] == pytest.approx(
        (R[1][0] * res["test_sizes"][0] + R[1][1] * res["test_sizes"][1]) / sum(res["test_sizes"]))


def test_resume_gives_the_same_matrix(tmp_path):
    _, full = _run("finetune", tmp_path / "a")
    run, part = _run("finetune", tmp_path / "b", stop_after=1)
    assert len(part["matrix"]) == 1 and run.ckpt.exists()
    assert load_results(run.path)["status"] == "running"
    _, resumed = _run("finetune", tmp_path / "b", resume=True)
    assert resumed["status"] == "finished"
    assert resumed["matrix"] == full["matrix"]
    assert resumed["zero_shot"] == full["zero_shot"]


def test_same_seed_is_deterministic_and_seeds_differ(tmp_path):
    _, a = _run("finetune", tmp_path / "a", extra=["iterations=8"])
    _, b = _run("finetune", tmp_path / "b", extra=["iterations=8"])
    assert a["matrix"] == b["matrix"]


def test_resume_refuses_a_different_config(tmp_path):
    from cl_bench.errors import UserError

    _run("finetune", tmp_path, stop_after=1)
    with pytest.raises(UserError, match="config differs in params.lr"):
        _run("finetune", tmp_path, extra=["lr=0.5"], resume=True)


def test_resume_accepts_a_different_operational_key(tmp_path):
    """eval_batch_size is operational (cl_bench/config.py): the run, and its checkpoint, resume."""
    _, full = _run("finetune", tmp_path / "a")
    run, _ = _run("finetune", tmp_path / "b", stop_after=1)
    assert run.ckpt.exists()
    _, resumed = _run("finetune", tmp_path / "b", extra=["eval_batch_size=7"], resume=True)
    assert resumed["status"] == "finished" and len(resumed["matrix"]) == 2
    assert resumed["setting"] == full["setting"] and "eval_batch_size" in resumed["operational_keys"]


def test_interrupt_keeps_finished_tasks(out_dir, monkeypatch):
    calls = {"n": 0}
    orig = Run.run_task

    def interrupt_on_second(self, t, *args):
        calls["n"] += 1
        if t == 1:
            raise KeyboardInterrupt
        return orig(self, t, *args)

    monkeypatch.setattr(Run, "run_task", interrupt_on_second)
    with pytest.raises(KeyboardInterrupt):
        _run("finetune", out_dir)
    res = json.loads((out_dir / "mtil-micro" / "finetune" / "seed0.json").read_text())
    assert res["status"] == "interrupted" and len(res["matrix"]) == 1
    monkeypatch.setattr(Run, "run_task", orig)
    _, resumed = _run("finetune", out_dir, resume=True)
    assert resumed["status"] == "finished" and len(resumed["matrix"]) == 2


class LossLog(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.losses = []

    def after_training_iteration(self, strategy, **kw):
        self.losses.append(float(strategy.loss.detach()))


def test_finetune_loss_falls_and_it_forgets(tmp_path):
    """Plain fine-tuning on digits with a large step size: its training loss falls, and it loses the
    colours it knew zero-shot (forgetting)."""
    cfg = make_config(method=registry.get_method("finetune"), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(tmp_path),
                      overrides=parse_set([*TINY_RUN, "train_per_class=12", "iterations=40", "lr=1e-3",
                                           "warmup=0", "label_smoothing=0.0"]))
    run = Run(cfg, log=lambda *a: None)
    run.setup()
    losses = LossLog()
    run.strategy.plugins.append(losses)
    res = run.execute(stop_after=1)
    first, last = sum(losses.losses[:5]) / 5, sum(losses.losses[-5:]) / 5
    assert last < first - 0.1, (first, last)  # it learns its task
    zs, after = res["zero_shot"], res["matrix"][0]
    assert after[1] < zs[1] - 15  # and forgets colours it knew zero-shot


def test_cli_run_prints_tables_and_path(out_dir, capsys):
    code = main(["run", "--method", "zeroshot", "--scenario", "mtil-micro", "--backbone", "tiny-test",
                 "--out", str(out_dir), "--quiet", "--device", "cpu", *sum((["--set", s] for s in TINY_RUN), [])])
    out = capsys.readouterr().out
    assert code == 0
    assert "Transfer" in out and "zero-shot" in out and "seed0.json" in out


def test_lr_per_task_overrides_the_learning_rate(out_dir):
    """ZSCL's recipe trains Aircraft and MNIST at 5e-5: a per-task lr. Here lr 0 on digits leaves the model
    unchanged by that task, while colours (lr 1e-3) moves it."""
    run, res = _run("finetune", out_dir, extra=["lr=1e-3", "warmup=0", "lr_per_task={digits: 0.0}"])
    assert res["matrix"][0] == res["zero_shot"]
    assert res["matrix"][1] != res["matrix"][0]
    ft = registry.get_method("finetune")
    assert ft.DEFAULTS["lr_per_task"] == {"Aircraft": 5e-5, "MNIST": 5e-5}
    assert ft.PROFILE_DEFAULTS["micro"]["lr_per_task"] == {}


def test_git_commit_marks_uncommitted_changes(tmp_path):
    import subprocess

    from cl_bench.runner import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    assert git_commit(tmp_path) is None  # not a repository
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "one")
    clean = git_commit(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "-dirty"


@pytest.mark.parametrize("damage", ["truncated weights", "garbage config"])
def test_a_damaged_tiny_backbone_cache_is_rebuilt(damage, tmp_path, monkeypatch):
    import shutil

    from cl_bench import backbone as B

    src = B.tiny_path("tiny-test")
    B.load_backbone("tiny-test")  # make sure the session's copy exists
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    dst = B.tiny_path("tiny-test")
    shutil.copytree(src, dst)
    if damage == "truncated weights":
        w = dst / "open_clip_pytorch_model.bin"
        w.write_bytes(w.read_bytes()[:1000])
    else:
        (dst / "open_clip_config.json").write_text("{not json")
    (dst.parent / f"{dst.name}.999999999.tmp").mkdir()  # a stale temporary of a killed write
    said = []
    b = B.load_backbone("tiny-test", log=said.append)
    assert len(said) == 1 and str(dst) in said[0] and "pre-training it again" in said[0]
    assert b.model.encode_image(torch.zeros(1, 3, 32, 32)).shape == (1, 32)  # a working model
    assert not list(dst.parent.glob("*.tmp"))


def test_damaged_open_clip_weights_give_one_line(tmp_path):
    from cl_bench.backbone import load_backbone
    from cl_bench.errors import UserError

    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"garbage" * 10)
    with pytest.raises(UserError, match="damaged file"):
        load_backbone("ViT-B-32", str(weights))
