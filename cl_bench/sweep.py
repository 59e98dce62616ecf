"""``cl-bench sweep``: every (method, seed) of a scenario as separate ``cl-bench run`` processes, a few at a
time, then optionally the leaderboard. This is how the published leaderboards are regenerated.

A sweep is resumable: each run is started with ``--resume``, so finished runs are kept and interrupted ones
continue from their last finished task (``fresh=True`` starts every run again)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import registry
from .errors import UserError


def plan(methods: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    names = sorted(registry.methods()) if methods == ["all"] else methods
    for m in names:
        registry.get_method(m)  # unknown names fail before anything runs
    return [(m, s) for m in names for s in seeds]


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Split the cores between concurrent runs: two 2-thread runs on 2 cores are slower than one each."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


def run_command(method: str, seed: int, scenario: str, out: str, device: str, extra: list[str],
                fresh: bool) -> list[str]:
    return [sys.executable, "-m", "cl_bench", "run", "--method", method, "--scenario", scenario, "--seed", str(seed),
            "--out", out, "--device", device, "--quiet", *([] if fresh else ["--resume"]), *extra]


def run_one(cmd: list[str], log: Path, threads: int) -> tuple[int, float]:
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    return code, time.perf_counter() - t0


def sweep(*, scenario: str, methods: list[str], seeds: list[int], out: str, device: str, jobs: int,
          extra: list[str], fresh: bool = False, log=print) -> list[tuple]:
    registry.get_scenario(scenario)
    grid = plan(methods, seeds)
    if not grid:
        raise UserError("nothing to run: give --methods and --seeds")
    log_dir = Path(out) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    threads = threads_per_job(jobs)
    done = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        logs = {(m, s): log_dir / f"{scenario}_{m}_seed{s}.log" for m, s in grid}
        futures = {(m, s): pool.submit(run_one, run_command(m, s, scenario, out, device, extra, fresh), path, threads)
                   for (m, s), path in logs.items()}
        for (m, s), fut in futures.items():
            code, secs = fut.result()
            log(f"{'ok    ' if code == 0 else 'FAILED'} {m} seed {s} ({secs:.0f} s) log: {logs[m, s]}")
            done.append((m, s, code, secs))
    return done
