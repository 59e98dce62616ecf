import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import submitit
from helpers import TINY_RUN

from cl_bench.cli import main
from cl_bench.errors import UserError
from cl_bench.slurm import RunJob, executor_parameters, parse_minutes, pending, slurm_executor, slurm_options, submit
from cl_bench.sweep import (
    DevicePool,
    Runner,
    RunSpec,
    local_slots,
    plan,
    run_args,
    run_command,
    sweep,
    threads_per_job,
    visible_gpus,
)
from cl_bench.sweep_status import collect

SWEEP_SETS = [*TINY_RUN, "iterations=2"]
EXTRA = run_args("tiny-test", SWEEP_SETS)


def test_threads_are_split_between_jobs():
    assert threads_per_job(1, cores=2) == 2
    assert threads_per_job(2, cores=2) == 1
    assert threads_per_job(3, cores=16) == 5
    assert threads_per_job(4, cores=2) == 1  # never zero


def test_plan_expands_all_and_rejects_unknown_names():
    grid = plan(["all"], [0, 1], ["mtil-micro", "cil-micro"])
    assert RunSpec("mtil-micro", "keeplora", 1) in grid and RunSpec("cil-micro", "zeroshot", 0) in grid
    assert len(grid) % 4 == 0
    with pytest.raises(UserError, match="nope"):
        plan(["nope"], [0], ["mtil-micro"])
    with pytest.raises(UserError, match="nowhere"):
        plan(["lora"], [0], ["nowhere"])


def test_runs_resume_unless_fresh():
    spec = RunSpec("mtil-micro", "lora", 0)
    assert "--resume" in run_command(spec, "out", "cpu", [], resume=True)
    assert "--resume" not in run_command(spec, "out", "cpu", [], resume=False)


def test_sweep_runs_and_a_second_sweep_keeps_finished_runs(tmp_path):
    out = tmp_path / "runs"
    kw = dict(specs=[RunSpec("mtil-micro", "zeroshot", 0)], out=str(out), device="cpu", jobs=1,
              extra=run_args("tiny-test", TINY_RUN), log=lambda *_: None)
    [(spec, code, _)] = sweep(**kw)
    assert (spec, code) == (RunSpec("mtil-micro", "zeroshot", 0), 0)
    path = out / "mtil-micro" / "zeroshot" / "seed0.json"
    assert json.loads(path.read_text())["status"] == "finished"
    written = path.stat().st_mtime_ns
    [(_, code, _)] = sweep(**kw)
    assert code == 0
    assert path.stat().st_mtime_ns == written  # kept, not re-run
    assert "already finished" in (out / "logs" / "mtil-micro_zeroshot_seed0.log").read_text()


# -- GPU pinning ------------------------------------------------------------------------------------------
def test_visible_gpus_follow_the_sweeps_own_cuda_visible_devices():
    assert visible_gpus(2, env={}) == ["0", "1"]
    assert visible_gpus(2, env={"CUDA_VISIBLE_DEVICES": "3,5"}) == ["3", "5"]
    assert visible_gpus(0, env={"CUDA_VISIBLE_DEVICES": ""}) == []


def test_device_pool_spreads_runs_and_caps_each_gpu():
    pool = DevicePool(["0", "1"], per_device=2)
    assert pool.capacity == 4
    got = [pool.acquire() for _ in range(4)]
    assert got[:2] == ["0", "1"] and sorted(got) == ["0", "0", "1", "1"]  # distinct ids first
    assert pool.acquire(timeout=0) is None  # full
    pool.release("1")
    assert pool.acquire(timeout=0) == "1"


def test_local_slots_cap_runs_at_gpus_times_runs_per_gpu():
    n, pool = local_slots("auto", None, 2, gpu_count=3)
    assert n == 6 and pool.capacity == 6
    assert local_slots("auto", 4, 2, gpu_count=3)[0] == 4  # --jobs lowers the cap, never raises it
    assert local_slots("auto", 9, 1, gpu_count=3)[0] == 3
    assert local_slots("cpu", None, 2, gpu_count=3) == (1, None)
    assert local_slots("auto", 2, 1, gpu_count=0) == (2, None)
    with pytest.raises(UserError, match="no GPU"):
        local_slots("cuda", None, 1, gpu_count=0)
    with pytest.raises(UserError, match="runs-per-gpu"):
        local_slots("auto", None, 0, gpu_count=2)


def test_runner_pins_each_child_and_never_exceeds_the_cap(tmp_path):
    """Real child processes record the GPU they were given and when they ran; no GPU ever holds more than K
    of them at once and all N*K slots are used."""
    pool = DevicePool(["0", "1"], per_device=2)
    runner = Runner(threads=1, pool=pool)
    probe = ("import os, sys, time; t0 = time.time(); time.sleep(0.3); "
             "open(sys.argv[1], 'w').write(f\"{os.environ['CUDA_VISIBLE_DEVICES']} {t0} {time.time()}\")")
    with ThreadPoolExecutor(max_workers=pool.capacity) as ex:
        futs = [ex.submit(runner, [sys.executable, "-c", probe, str(tmp_path / f"r{i}")], tmp_path / f"r{i}.log")
                for i in range(8)]
        results = [f.result() for f in futs]
    assert all(code == 0 for code, _, _ in results)
    spans = [(gpu, float(a), float(b)) for gpu, a, b in
             (p.read_text().split() for p in sorted(tmp_path.glob("r?")))]
    assert [gpu for _, _, gpu in results] == [g for g, _, _ in spans]  # the child saw the GPU it was given
    for gpu in ("0", "1"):
        mine = [(a, b) for g, a, b in spans if g == gpu]
        assert len(mine) == 4
        assert max(sum(a <= t < b for a, b in mine) for t, _ in mine) <= 2
    assert pool.load == {"0": 0, "1": 0}


# -- SLURM parameters (no cluster: a stand-in sbatch records the script it is given) ----------------------
def test_parse_minutes():
    assert [parse_minutes(v) for v in (90, "90", "30:30", "2:00:00", "1-00:00:00", "1-02:30")] == \
        [90, 90, 31, 120, 1440, 1590]
    for bad in ("0", "1h", "1:2:3:4", True):
        with pytest.raises(UserError, match="time"):
            parse_minutes(bad)


def write_config(tmp_path) -> Path:
    cfg = tmp_path / "slurm.yaml"
    cfg.write_text("partition: a100\ntime: 1-00:00:00\ngpus: 2\nmem_gb: 80\nmax_running: 8\naccount: proj42\n")
    return cfg


def test_slurm_options_come_from_defaults_config_and_flags(tmp_path):
    opts = slurm_options({"partition": "h100", "cpus": 16, "time": None}, str(write_config(tmp_path)))
    assert opts["partition"] == "h100" and opts["cpus"] == 16  # flags win
    assert opts["time"] == 1440 and opts["gpus"] == 2 and opts["mem_gb"] == 80  # from the file
    params = executor_parameters(opts)
    assert params["slurm_partition"] == "h100" and params["timeout_min"] == 1440
    assert params["gpus_per_node"] == 2 and params["cpus_per_task"] == 16 and params["mem_gb"] == 80
    assert params["slurm_array_parallelism"] == 8 and params["slurm_account"] == "proj42"
    with pytest.raises(UserError, match="gpus"):
        slurm_options({"gpus": -1})
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(UserError, match="mapping"):
        slurm_options({}, str(tmp_path / "bad.yaml"))


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch and srun stand-ins on PATH: sbatch copies the script it is given and answers as SLURM does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch_scripts"
    record.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {record}/$(date +%s%N).sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_slurm_executor_holds_the_parameters(tmp_path, fake_slurm):
    opts = slurm_options({"partition": "h100", "cpus": 16}, str(write_config(tmp_path)))
    ex = slurm_executor(tmp_path / "sub" / "%j", opts)
    p = ex._executor.parameters  # what submitit writes into the sbatch script
    assert p["partition"] == "h100" and p["time"] == 1440 and p["gpus_per_node"] == 2
    assert p["cpus_per_task"] == 16 and p["mem"] == "80GB" and p["array_parallelism"] == 8
    assert p["account"] == "proj42" and p["signal_delay_s"] == 120
    assert ex._executor.max_num_timeout == 20  # time-limit requeues before submitit gives up
    with pytest.raises(UserError, match="Unknown argument .not_a_slurm_key"):
        slurm_executor(tmp_path / "sub", {**opts, "not_a_slurm_key": 1})


def test_slurm_needs_sbatch(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="sbatch and srun"):
        slurm_executor(tmp_path / "sub", slurm_options({}))


def finished_run(out: Path, spec: RunSpec, sets: list[str]) -> Path:
    """A finished results file as this sweep would write it (a published run with this sweep's config)."""
    from cl_bench import registry
    from cl_bench.config import make_config, parse_set

    src = Path(__file__).parent.parent / "leaderboards" / "runs" / "mtil-micro" / spec.method / "seed0.json"
    res = json.loads(src.read_text())
    res["config"] = make_config(method=registry.get_method(spec.method), scenario=registry.get_scenario(spec.scenario),
                                backbone="tiny-test", pretrained=None, seed=spec.seed, device="auto", out=str(out),
                                overrides=parse_set(sets)).to_dict()
    path = out / spec.scenario / spec.method / f"seed{spec.seed}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(res))
    return path


def test_slurm_sweep_submits_one_array_of_the_unfinished_runs(tmp_path, fake_slurm, capsys):
    out = tmp_path / "runs"
    done = finished_run(out, RunSpec("mtil-micro", "zeroshot", 0), SWEEP_SETS)
    argv = ["sweep", "--executor", "slurm", "--scenario", "mtil-micro", "--methods", "zeroshot", "lora", "finetune",
            "--seeds", "0", "--out", str(out), "--backbone", "tiny-test", *EXTRA[:-2],
            "--partition", "h100", "--time", "2:00:00", "--gpus", "1", "--max-running", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "1 of 3 run(s) already finished" in text and "submitted 2 run(s) as SLURM job array 4242" in text
    [script] = fake_slurm.glob("*.sh")
    lines = script.read_text().splitlines()
    for flag in ("--array=0-1%1", "--partition=h100", "--time=120", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--mem=64GB", "--signal=USR2@120"):
        assert f"#SBATCH {flag}" in lines
    pickles = sorted((out / "logs" / "submitit").glob("*/4242_*_submitted.pkl"))
    jobs = [submitit.helpers.DelayedSubmission.load(p).function for p in pickles]
    assert sorted(j.spec.method for j in jobs) == ["finetune", "lora"]
    assert all("--resume" in j.command and j.cwd == os.getcwd() for j in jobs)
    assert "CL_BENCH_CACHE" in jobs[0].env  # the jobs find the same cache
    # a sweep whose options differ from a finished file's is refused before anything is queued
    assert main([*argv, "--set", "lr=0.5"]) == 2
    assert "another config" in capsys.readouterr().err and len(list(fake_slurm.glob("*.sh"))) == 1
    assert done.is_file()


def test_sweep_flags_are_checked():
    with pytest.raises(UserError, match="--scenario"):
        from cl_bench.cli import _parser, cmd_sweep

        cmd_sweep(_parser().parse_args(["sweep"]), None)
    assert main(["sweep", "--scenario", "mtil-micro", "--partition", "x"]) == 2
    assert main(["sweep", "--scenario", "mtil-micro", "--executor", "slurm", "--jobs", "2"]) == 2


# -- submitit's real local executor -----------------------------------------------------------------------
@pytest.mark.slow
def test_submitit_jobs_run_and_a_resubmitted_sweep_resumes_the_killed_one(tmp_path, monkeypatch):
    """Two runs as submitit jobs; the finetune run is killed right after its first task (SIGKILL, as a node
    failure would); submitting the sweep again skips the finished run and resumes the killed one."""
    out = str(tmp_path / "runs")
    ex = submitit.LocalExecutor(folder=tmp_path / "submitit")
    ex.update_parameters(timeout_min=30)
    zs, ft = RunSpec("mtil-micro", "zeroshot", 0), RunSpec("mtil-micro", "finetune", 0)
    [zs_job] = submit(ex, [zs], out=out, device="cpu", extra=EXTRA)
    monkeypatch.setenv("CL_BENCH_KILL_AT", "results:0")
    [ft_job] = submit(ex, [ft], out=out, device="cpu", extra=EXTRA)
    monkeypatch.delenv("CL_BENCH_KILL_AT")
    zs_path = Path(zs_job.result())
    with pytest.raises(submitit.core.utils.FailedJobError, match="exited with code -9"):
        ft_job.result()
    states = {r.spec: (r.state, r.tasks) for r in collect(out)}
    assert states == {zs: ("finished", "2/2"), ft: ("running", "1/2")}
    before = (zs_path.read_bytes(), zs_path.stat().st_mtime_ns)

    todo, finished = pending([zs, ft], out=out, device="cpu", backbone="tiny-test", overrides=SWEEP_SETS,
                             fresh=False)
    assert (todo, finished) == ([ft], [zs])
    [job] = submit(ex, todo, out=out, device="cpu", extra=EXTRA)
    ft_path = Path(job.result())
    res = json.loads(ft_path.read_text())
    assert res["status"] == "finished" and len(res["matrix"]) == 2
    assert "resuming" in (Path(out) / "logs" / "mtil-micro_finetune_seed0.log").read_text()
    assert (zs_path.read_bytes(), zs_path.stat().st_mtime_ns) == before  # untouched


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job process through /proc")
def test_preempted_submitit_job_requeues_itself_and_resumes(tmp_path, monkeypatch):
    """SLURM's warning signal (USR2) reaches the job while its run sits after task 0 (stopped there on
    purpose): the run is interrupted, submitit requeues the job, and the requeued run resumes at task 1."""
    out = str(tmp_path / "runs")
    ex = submitit.LocalExecutor(folder=tmp_path / "submitit")
    ex.update_parameters(timeout_min=30)
    spec = RunSpec("mtil-micro", "finetune", 1)
    monkeypatch.setenv("CL_BENCH_KILL_AT", "results:0")
    monkeypatch.setenv("CL_BENCH_KILL_SIGNAL", "STOP")  # the run pauses right after committing task 0
    [job] = submit(ex, [spec], out=out, device="cpu", extra=EXTRA)
    path = Path(out) / "mtil-micro" / "finetune" / "seed1.json"
    deadline = time.time() + 300
    while not (path.is_file() and json.loads(path.read_text())["matrix"]) and time.time() < deadline:
        time.sleep(0.2)
    assert path.is_file(), "the run never finished its first task"
    [task] = _children(int(job.job_id))  # the submitit job process under the local controller
    os.kill(task, signal.SIGUSR2)
    result = Path(job.result())
    res = json.loads(result.read_text())
    assert res["status"] == "finished" and len(res["matrix"]) == 2
    log = (Path(out) / "logs" / "mtil-micro_finetune_seed1.log").read_text()
    assert "interrupted" in log and "resuming" in log and log.count("$ ") == 2  # ran twice, same log


def test_checkpoint_requeues_the_same_run_with_resume():
    job = RunJob(RunSpec("mtil-micro", "lora", 2), "out", "cpu", ["--set", "lr=0.1"], resume=False)
    again = job.checkpoint().function
    assert isinstance(again, RunJob) and again is not job
    assert again.command == run_command(RunSpec("mtil-micro", "lora", 2), "out", "cpu", ["--set", "lr=0.1"], True)


# -- status -----------------------------------------------------------------------------------------------
def test_status_shows_finished_failed_interrupted_running_and_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per run
    out = tmp_path / "runs"
    finished_run(out, RunSpec("mtil-micro", "zeroshot", 0), SWEEP_SETS)
    for method, status, error, rows in (("lora", "failed", "RuntimeError: CUDA out of memory", 1),
                                        ("finetune", "interrupted", "interrupted by the user", 1),
                                        ("keeplora", "running", None, 0)):
        path = finished_run(out, RunSpec("mtil-micro", method, 0), SWEEP_SETS)
        res = json.loads(path.read_text())
        res.update(status=status, error=error, matrix=res["matrix"][:rows], per_task=res["per_task"][:rows])
        path.write_text(json.dumps(res))
    (out / "logs").mkdir()
    assert main(["sweep", "--status", str(out), "--scenario", "mtil-micro", "--methods", "zeroshot", "lora",
                 "finetune", "keeplora", "wise-ft", "--seeds", "0"]) == 0
    text = capsys.readouterr().out
    rows = {line.split("│")[2].strip(): line for line in text.splitlines() if "│ mtil-micro" in line}
    assert "finished" in rows["zeroshot"] and "5/5" in rows["zeroshot"]
    assert "failed" in rows["lora"] and "CUDA out of memory" in rows["lora"] and "1/5" in rows["lora"]
    assert "interrupted" in rows["finetune"] and "interrupted by the user" in rows["finetune"]
    assert "running" in rows["keeplora"] and "0/5" in rows["keeplora"]
    assert "missing" in rows["wise-ft"]
    assert "1 finished, 1 running, 1 interrupted, 1 failed, 1 missing of 5 run(s)" in text
    # without a plan: only what is on disk
    assert main(["sweep", "--status", str(out)]) == 0
    assert "missing" not in capsys.readouterr().out.split("┩")[1]


def test_ctrl_c_stops_the_sweep_at_once(tmp_path):
    """A real process group gets SIGINT (what a terminal's Ctrl-C sends): the running run is interrupted and
    keeps its results, no queued run starts, one line, exit 130, no traceback."""
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
