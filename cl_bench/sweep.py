"""``cl-bench sweep``: every (scenario, method, seed) as a separate ``cl-bench run``, then optionally the
leaderboard. This is how the published leaderboards are regenerated.

This module holds the plan and the local executor (a few child processes at a time, each pinned to one GPU
when GPUs are visible); ``cl_bench.slurm`` submits the same runs as a SLURM job array and
``cl_bench.sweep_status`` reports on them. A sweep is resumable: each run is started with ``--resume``, so
finished runs are kept and interrupted ones continue from their last finished task (``fresh=True`` starts
every run again). docs/sweeps.md is the user's guide."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from . import registry
from .errors import UserError


class RunSpec(NamedTuple):
    scenario: str
    method: str
    seed: int


def plan(methods: list[str], seeds: list[int], scenarios: list[str]) -> list[RunSpec]:
    """Every run of the sweep; unknown names fail before anything runs."""
    for sc in scenarios:
        registry.get_scenario(sc)
    names = sorted(registry.methods()) if methods == ["all"] else methods
    for m in names:
        registry.get_method(m)
    grid = [RunSpec(sc, m, s) for sc in scenarios for m in names for s in seeds]
    if not grid:
        raise UserError("nothing to run: give --scenario, --methods and --seeds")
    return grid


def run_args(backbone: str | None, overrides: list[str]) -> list[str]:
    """The ``cl-bench run`` options every run of the sweep shares."""
    return [x for item in overrides for x in ("--set", item)] + (["--backbone", backbone] if backbone else [])


def run_command(spec: RunSpec, out: str, device: str, extra: list[str], resume: bool) -> list[str]:
    return [sys.executable, "-m", "cl_bench", "run", "--method", spec.method, "--scenario", spec.scenario,
            "--seed", str(spec.seed), "--out", out, "--device", device, "--quiet",
            *(["--resume"] if resume else []), *extra]


def log_path(out: str, spec: RunSpec) -> Path:
    return Path(out) / "logs" / f"{spec.scenario}_{spec.method}_seed{spec.seed}.log"


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Split the cores between concurrent runs: two 2-thread runs on 2 cores are slower than one each."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


# -- GPU pinning ------------------------------------------------------------------------------------------
def visible_gpus(count: int, env: Mapping[str, str] = os.environ) -> list[str]:
    """Ids a child run can be pinned to. When the sweep itself runs under CUDA_VISIBLE_DEVICES, its children
    must be given those same ids (physical ids or UUIDs), not 0..count-1."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    return [x.strip() for x in listed.split(",") if x.strip()][:count]


class DevicePool:
    """At most ``per_device`` runs on each GPU. A starting run gets the least-loaded GPU (first in order on a
    tie), so N runs on N GPUs get N distinct ids."""

    def __init__(self, ids: list[str], per_device: int):
        if per_device < 1:
            raise UserError(f"--runs-per-gpu {per_device}: give 1 or more")
        self.load = dict.fromkeys(ids, 0)
        self.per_device = per_device
        self.cond = threading.Condition()

    @property
    def capacity(self) -> int:
        return len(self.load) * self.per_device

    def acquire(self, timeout: float | None = None) -> str | None:
        """A GPU id with room for one more run (None when none frees up within ``timeout`` seconds)."""
        with self.cond:
            if not self.cond.wait_for(lambda: min(self.load.values()) < self.per_device, timeout):
                return None
            gpu = min(self.load, key=self.load.__getitem__)
            self.load[gpu] += 1
            return gpu

    def release(self, gpu: str) -> None:
        with self.cond:
            self.load[gpu] -= 1
            self.cond.notify()


def local_slots(device: str, jobs: int | None, runs_per_gpu: int, gpu_count: int | None = None
                ) -> tuple[int, DevicePool | None]:
    """How many runs go at once and, on GPUs, the pool that pins them. ``gpu_count`` defaults to what torch
    sees (tests pass a number). ``--device cuda:1`` or ``cpu`` pins nothing."""
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: give 1 or more")
    if runs_per_gpu < 1:
        raise UserError(f"--runs-per-gpu {runs_per_gpu}: give 1 or more")
    if device not in ("auto", "cuda"):
        return jobs or 1, None
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    ids = visible_gpus(gpu_count)
    if not ids:
        if device == "cuda":
            raise UserError("--device cuda but no GPU is visible; use --device cpu or auto")
        return jobs or 1, None
    pool = DevicePool(ids, runs_per_gpu)
    return min(jobs or pool.capacity, pool.capacity), pool


# -- local executor ---------------------------------------------------------------------------------------
class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep: no queued run was started, running ones were interrupted."""

    def __init__(self, finished: int, interrupted: int):
        super().__init__(f"{finished} run(s) finished, {interrupted} interrupted")
        self.finished, self.interrupted = finished, interrupted


class Runner:
    """Starts runs as child processes in their own session, so a terminal's Ctrl-C reaches only the sweep,
    which then starts nothing more and forwards exactly one SIGINT to each running child (each child
    then marks its results ``interrupted`` and keeps its finished tasks)."""

    def __init__(self, threads: int, pool: DevicePool | None = None):
        self.threads = threads
        self.pool = pool
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()

    def __call__(self, cmd: list[str], log: Path) -> tuple[int | None, float, str | None]:
        gpu = self.pool.acquire() if self.pool is not None else None
        try:
            return (*self._run(cmd, log, gpu), gpu)
        finally:
            if gpu is not None:
                self.pool.release(gpu)

    def _run(self, cmd: list[str], log: Path, gpu: str | None) -> tuple[int | None, float]:
        env = os.environ | {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
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


def sweep(*, specs: list[RunSpec], out: str, device: str, extra: list[str], jobs: int | None = 1,
          runs_per_gpu: int = 1, gpu_count: int | None = None, fresh: bool = False, log=print) -> list[tuple]:
    """Run ``specs`` here; returns (spec, exit code, seconds) per run, in plan order."""
    concurrency, pool = local_slots(device, jobs, runs_per_gpu, gpu_count)
    (Path(out) / "logs").mkdir(parents=True, exist_ok=True)
    runner = Runner(threads_per_job(concurrency), pool)
    done = []
    executor = ThreadPoolExecutor(max_workers=concurrency)
    try:
        futures = {spec: executor.submit(runner, run_command(spec, out, device, extra, not fresh),
                                         log_path(out, spec)) for spec in specs}
        for spec, fut in futures.items():
            code, secs, gpu = fut.result()
            where = f" on GPU {gpu}" if gpu is not None else ""
            log(f"{'ok    ' if code == 0 else 'FAILED'} {spec.scenario} {spec.method} seed {spec.seed}{where} "
                f"({secs:.0f} s) log: {log_path(out, spec)}")
            done.append((spec, code, secs))
    except KeyboardInterrupt:
        executor.shutdown(wait=False, cancel_futures=True)
        interrupted = runner.stop()
        executor.shutdown(wait=True)
        raise SweepInterrupted(len([d for d in done if d[1] == 0]), interrupted) from None
    executor.shutdown(wait=True)
    return done
