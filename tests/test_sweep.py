import json

import pytest
from helpers import TINY_RUN

from cl_bench.errors import UserError
from cl_bench.sweep import plan, run_command, sweep, threads_per_job


def test_threads_are_split_between_jobs():
    assert threads_per_job(1, cores=2) == 2
    assert threads_per_job(2, cores=2) == 1
    assert threads_per_job(3, cores=16) == 5
    assert threads_per_job(4, cores=2) == 1  # never zero


def test_plan_expands_all_and_rejects_unknown_methods():
    grid = plan(["all"], [0, 1])
    assert ("keeplora", 1) in grid and ("zeroshot", 0) in grid and len(grid) % 2 == 0
    with pytest.raises(UserError, match="nope"):
        plan(["nope"], [0])


def test_runs_resume_unless_fresh():
    assert "--resume" in run_command("lora", 0, "mtil-micro", "out", "cpu", [], fresh=False)
    assert "--resume" not in run_command("lora", 0, "mtil-micro", "out", "cpu", [], fresh=True)


def test_sweep_runs_and_a_second_sweep_keeps_finished_runs(tmp_path):
    extra = ["--backbone", "tiny-test", *[x for kv in TINY_RUN for x in ("--set", kv)]]
    out = tmp_path / "runs"
    kw = dict(scenario="mtil-micro", methods=["zeroshot"], seeds=[0], out=str(out), device="cpu", jobs=1,
              extra=extra, log=lambda *_: None)
    [(m, s, code, _)] = sweep(**kw)
    assert (m, s, code) == ("zeroshot", 0, 0)
    path = out / "mtil-micro" / "zeroshot" / "seed0.json"
    assert json.loads(path.read_text())["status"] == "finished"
    written = path.stat().st_mtime_ns
    [(_, _, code, _)] = sweep(**kw)
    assert code == 0
    assert path.stat().st_mtime_ns == written  # kept, not re-run
    assert "already finished" in (out / "logs" / "mtil-micro_zeroshot_seed0.log").read_text()


def test_ctrl_c_stops_the_sweep_at_once(tmp_path):
    """A real process group gets SIGINT (what a terminal's Ctrl-C sends): the running run is interrupted and
    keeps its results, no queued run starts, one line, exit 130, no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "cl_bench", "sweep", "--scenario", "mtil-micro", "--methods", "finetune", "lora",
           "zeroshot", "--seeds", "0", "--jobs", "1", "--out", str(out), "--device", "cpu", "--backbone", "tiny-test",
           *[x for kv in [*TINY_RUN, "iterations=400"] for x in ("--set", kv)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = out / "mtil-micro" / "finetune" / "seed0.json"
    deadline = time.time() + 240
    while not (first.is_file() and json.loads(first.read_text())["zero_shot"]) and time.time() < deadline:
        time.sleep(0.2)
    assert first.is_file(), "the first run never started"
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert time.time() - t0 < 60
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert [line for line in stdout.splitlines() if "interrupted" in line] == [
        "sweep interrupted: 0 run(s) finished, 1 interrupted; no queued run was started. Re-run the same command "
        "to resume."]
    assert json.loads(first.read_text())["status"] == "interrupted"
    assert not (out / "mtil-micro" / "lora").exists() and not (out / "mtil-micro" / "zeroshot").exists()
