"""``cl-bench sweep``: every (method, seed) of a scenario as separate ``cl-bench run`` processes, a few at a
time, then optionally the leaderboard. This is how the published leaderboards are regenerated.

A sweep is resumable: each run is started with ``--resume``, so finished runs are kept and interrupted ones
continue from their last finished task (``fresh=True`` starts every run again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
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


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep: no queued run was started, running ones were interrupted."""

    def __init__(self, finished: int, interrupted: int):
        super().__init__(f"{finished} run(s) finished, {interrupted} interrupted")
        self.finished, self.interrupted = finished, interrupted


class Runner:
    """Starts runs as child processes in their own session, so a terminal's Ctrl-C reaches only the sweep,
    which then starts nothing more and forwards exactly one SIGINT to each running child (each child
    then marks its results ``interrupted`` and keeps its finished tasks)."""

    def __init__(self, threads: int):
        self.threads = threads
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()

    def __call__(self, cmd: list[str], log: Path) -> tuple[int | None, float]:
        env = os.environ | {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        t0 = time.perf_counter()
        with open(log, "w") as f, self.lock:
            if self.stopping.is_set():
                return None, 0.0  # never started
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            self.running.add(proc)
        code = proc.wait()
        with self.lock:
            self.running.discard(proc)
        return code, time.perf_counter() - t0

    def stop(self, grace_s: float = 120.0) -> int:
        """Start nothing more; interrupt the running children and wait for them. Returns how many there were."""
        with self.lock:
            self.stopping.set()
            procs = list(self.running)
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                p.kill()
        return len(procs)


def sweep(*, scenario: str, methods: list[str], seeds: list[int], out: str, device: str, jobs: int,
          extra: list[str], fresh: bool = False, log=print) -> list[tuple]:
    registry.get_scenario(scenario)
    grid = plan(methods, seeds)
    if not grid:
        raise UserError("nothing to run: give --methods and --seeds")
    log_dir = Path(out) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(threads_per_job(jobs))
    done = []
    logs = {(m, s): log_dir / f"{scenario}_{m}_seed{s}.log" for m, s in grid}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {key: pool.submit(runner, run_command(*key, scenario, out, device, extra, fresh), path)
                   for key, path in logs.items()}
        for (m, s), fut in futures.items():
            code, secs = fut.result()
            log(f"{'ok    ' if code == 0 else 'FAILED'} {m} seed {s} ({secs:.0f} s) log: {logs[m, s]}")
            done.append((m, s, code, secs))
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        interrupted = runner.stop()
        pool.shutdown(wait=True)
        raise SweepInterrupted(len([d for d in done if d[2] == 0]), interrupted) from None
    pool.shutdown(wait=True)
    return done
