"""``cl-bench sweep``: every (method, seed) of a scenario as separate ``cl-bench run`` processes, a few at a
time, then optionally the leaderboard. This is how the published leaderboards are regenerated."""

from __future__ import annotations

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


def run_one(method: str, seed: int, scenario: str, out: str, device: str, extra: list[str], log_dir: Path) -> tuple:
    cmd = [sys.executable, "-m", "cl_bench", "run", "--method", method, "--scenario", scenario, "--seed", str(seed),
           "--out", out, "--device", device, "--quiet", *extra]
    t0 = time.perf_counter()
    log = log_dir / f"{scenario}_{method}_seed{seed}.log"
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    return method, seed, code, time.perf_counter() - t0, log


def sweep(*, scenario: str, methods: list[str], seeds: list[int], out: str, device: str, jobs: int,
          extra: list[str], log=print) -> list[tuple]:
    registry.get_scenario(scenario)
    grid = plan(methods, seeds)
    if not grid:
        raise UserError("nothing to run: give --methods and --seeds")
    log_dir = Path(out) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    done = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_one, m, s, scenario, out, device, extra, log_dir) for m, s in grid]
        for fut in futures:
            m, s, code, secs, path = fut.result()
            log(f"{'ok    ' if code == 0 else 'FAILED'} {m} seed {s} ({secs:.0f} s) log: {path}")
            done.append((m, s, code, secs))
    return done
