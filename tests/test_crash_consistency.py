"""A real `cl-bench run` process killed at each named point of the task loop (SIGKILL, and SIGINT where a
Ctrl-C can land) resumes with --resume to exactly the uninterrupted run's results."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cl_bench import registry
from cl_bench.config import make_config, parse_set
from cl_bench.results import load_results
from cl_bench.runner import Run

# 3 tasks, a few steps each: every kill point (train/eval of a middle task, the commit window) exists.
SETS = ["train_per_class=4", "test_per_class=3", "tasks=[digits,colours,glyphs]", "iterations=3",
        "batch_size=8", "eval_batch_size=64"]
# Methods that carry state across tasks (and WiSE-FT, which blends with the previous task's weights).
METHODS = ["finetune", "lora", "keeplora", "zscl", "lwf", "olora", "inflora", "wise-ft"]
# (phase, task, signal): mid-training, between checkpoint and results, after a results write, mid-evaluation,
# during the checkpoint save, after the last results write.
POINTS = [("train", 1, "KILL"), ("commit", 0, "KILL"), ("results", 0, "KILL"), ("eval", 1, "KILL"),
          ("checkpoint", 1, "INT"), ("train", 1, "INT"), ("final", 2, "KILL")]
_baseline: dict[str, dict] = {}


def _config(method, out):
    return make_config(method=registry.get_method(method), scenario=registry.get_scenario("mtil-micro"),
                       backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                       overrides=parse_set(SETS))


def baseline(method, tmp_path_factory):
    if method not in _baseline:
        _baseline[method] = Run(_config(method, tmp_path_factory.mktemp("base")), log=lambda *a: None).execute()
    return _baseline[method]


def killed_run(method, out, phase, task, sig):
    cmd = [sys.executable, "-m", "cl_bench", "run", "--method", method, "--scenario", "mtil-micro",
           "--backbone", "tiny-test", "--device", "cpu", "--quiet", "--out", str(out),
           *[x for s in SETS for x in ("--set", s)]]
    # The same thread count as this process (which runs the baseline and the resume): CPU reductions are
    # bit-exact only for a fixed number of threads.
    env = os.environ | {"CL_BENCH_KILL_AT": f"{phase}:{task}", "CL_BENCH_KILL_SIGNAL": sig,
                        "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("phase,task,sig", POINTS, ids=[f"{p}{t}-{s}" for p, t, s in POINTS])
def test_kill_then_resume_reproduces_the_uninterrupted_run(method, phase, task, sig, tmp_path, tmp_path_factory):
    if (phase, sig) == ("final", "KILL") and method not in ("finetune", "keeplora"):
        pytest.skip("the after-last-write window does not depend on the method")
    full = baseline(method, tmp_path_factory)
    proc = killed_run(method, tmp_path, phase, task, sig)
    assert proc.returncode == (130 if sig == "INT" else -9), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    path = tmp_path / "mtil-micro" / method / "seed0.json"
    killed = json.loads(path.read_text())
    assert killed["status"] == ("finished" if phase == "final" else "running" if sig == "KILL" else "interrupted")

    run = Run(_config(method, tmp_path), log=lambda *a: None)
    resumed = run.execute(resume=True)
    assert resumed["status"] == "finished"
    assert resumed["zero_shot"] == full["zero_shot"]
    assert resumed["matrix"] == full["matrix"]
    assert [p["task"] for p in resumed["per_task"]] == ["digits", "colours", "glyphs"]
    assert load_results(path)["matrix"] == full["matrix"]
    assert not run.ckpt.exists()
    assert not list(path.parent.glob("*.tmp"))  # a killed write's temporary is cleaned up
