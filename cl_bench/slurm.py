"""``cl-bench sweep --executor slurm``: one SLURM job per (scenario, method, seed), submitted as one submitit
job array with a cap on how many run at once.

Each job is an ordinary ``cl-bench run ... --resume`` in a child process. When SLURM is about to stop the
job (time limit or preemption, announced with submitit's USR2 signal), ``RunJob.checkpoint`` interrupts the
child the way Ctrl-C does (its results file keeps every finished task and says ``interrupted``) and hands
submitit the same command to requeue; the requeued job's ``--resume`` continues at the next task. A sweep
submitted again skips runs whose results file is already finished with the same config. docs/sweeps.md is
the user's guide."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml

from .errors import UserError
from .results import results_path
from .sweep import RunSpec, log_path, run_command

# Friendly names (flags and config file) -> submitit AutoExecutor parameters. Any other config-file key is
# passed to submitit's SLURM executor as is (account, qos, constraint, exclude, setup, ...).
GENERIC = {"time": "timeout_min", "gpus": "gpus_per_node", "cpus": "cpus_per_task", "mem_gb": "mem_gb"}
SLURM_ONLY = {"partition": "slurm_partition", "max_running": "slurm_array_parallelism"}
DEFAULTS = {"time": 720, "gpus": 1, "cpus": 8, "mem_gb": 64, "max_running": 64, "max_requeues": 20,
            "signal_delay_s": 120}
GRACE_S = 60  # how long a preempted run may take to record its state before the job gives up on it


def parse_minutes(value) -> int:
    """A SLURM time limit in minutes: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (seconds round up)."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text):
        raise UserError(f"time {value!r}: give minutes (e.g. 720) or D-HH:MM:SS (e.g. 1-00:00:00)")
    days, _, clock = text.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    if days:  # D-HH[:MM[:SS]]
        h, m, s = (parts + [0, 0])[:3]
        minutes = int(days) * 1440 + h * 60 + m + (s > 0)
    elif len(parts) == 3:  # HH:MM:SS
        h, m, s = parts
        minutes = h * 60 + m + (s > 0)
    else:  # MM or MM:SS
        h, m, s = 0, parts[0], parts[1] if len(parts) == 2 else 0
        minutes = h * 60 + m + (s > 0)
    if minutes <= 0:
        raise UserError(f"time {value!r}: the time limit must be at least one minute")
    return minutes


def read_slurm_config(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise UserError(f"--slurm-config {path}: cannot read it ({e.strerror or type(e).__name__})") from None
    except yaml.YAMLError as e:
        raise UserError(f"--slurm-config {path} is not valid YAML ({' '.join(str(e).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--slurm-config {path} must be a mapping of keys such as partition: gpu, time: 720")
    return data


def slurm_options(flags: dict, config_file: str | None = None) -> dict:
    """Defaults, then the config file, then the flags that were given (None = not given)."""
    opts = {**DEFAULTS, **read_slurm_config(config_file), **{k: v for k, v in flags.items() if v is not None}}
    opts["time"] = parse_minutes(opts["time"])
    for key in ("gpus", "cpus", "max_running", "max_requeues", "signal_delay_s"):
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key in ("gpus", "max_requeues") else 1):
            raise UserError(f"slurm {key}={v!r}: give a whole number (--{key.replace('_', '-')} or {key}: in "
                            "--slurm-config)")
    if isinstance(opts["mem_gb"], bool) or not isinstance(opts["mem_gb"], int | float) or opts["mem_gb"] <= 0:
        raise UserError(f"slurm mem_gb={opts['mem_gb']!r}: give a number of GB")
    return opts


def executor_parameters(opts: dict) -> dict:
    """The submitit AutoExecutor parameters of these options (one task on one node per run)."""
    params = {"name": "cl-bench", "nodes": 1, "tasks_per_node": 1, "slurm_signal_delay_s": opts["signal_delay_s"]}
    for key, value in opts.items():
        if key in GENERIC:
            params[GENERIC[key]] = value
        elif key in SLURM_ONLY:
            if value is not None:
                params[SLURM_ONLY[key]] = value
        elif key not in ("max_requeues", "signal_delay_s"):
            params[f"slurm_{key}"] = value
    return params


def slurm_executor(folder: str | Path, opts: dict):
    """A submitit SLURM executor with these options; needs SLURM's commands on PATH."""
    import submitit

    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise UserError("--executor slurm needs SLURM's sbatch and srun on PATH; run the sweep on the cluster's "
                        "login node, or use --executor local")
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=opts["max_requeues"])
    try:
        ex.update_parameters(**executor_parameters(opts))
    except (ValueError, NameError) as e:
        first = str(e).splitlines()[0]
        raise UserError(f"--slurm-config: {first}") from None
    return ex


# -- the job ----------------------------------------------------------------------------------------------
def _preempt_signal() -> signal.Signals:
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))


def _ignore_preempt_signal() -> None:
    """In the child: SLURM signals every process of the job; only the job process acts on the warning."""
    signal.signal(_preempt_signal(), signal.SIG_IGN)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1].strip() if lines else "(empty log)"


class RunJob:
    """One run as a submitit job: a picklable callable, checkpointable (submitit requeues what
    ``checkpoint`` returns when the job is preempted or reaches its time limit)."""

    def __init__(self, spec: RunSpec, out: str, device: str, extra: list[str], resume: bool = True,
                 cwd: str | None = None, env: dict | None = None):
        self.spec, self.out, self.device, self.extra, self.resume = spec, out, device, list(extra), resume
        self.cwd = cwd or os.getcwd()  # --out may be relative: runs start where the sweep was submitted
        # cl-bench's own settings (cache, data root) follow the jobs even where SLURM exports no environment
        self.env = {k: v for k, v in os.environ.items() if k.startswith("CL_BENCH_")} if env is None else env
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return run_command(self.spec, self.out, self.device, self.extra, self.resume)

    @property
    def log(self) -> Path:
        return Path(self.cwd) / log_path(self.out, self.spec)

    def __call__(self) -> str:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as f:  # a requeued job appends to the same log
            f.write(f"$ {' '.join(self.command)}\n")
            f.flush()
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=os.environ | self.env, stdout=f,
                                         stderr=subprocess.STDOUT, preexec_fn=_ignore_preempt_signal)
            # poll rather than wait(): checkpoint() runs in a signal handler and waits on the same process
            while (code := self.proc.poll()) is None:
                time.sleep(0.5)
        if code != 0:
            raise RuntimeError(f"{' '.join(self.spec_words())} exited with code {code}: {_last_line(self.log)} "
                               f"(log: {self.log})")
        return str(results_path(self.out, self.spec.scenario, self.spec.method, self.spec.seed))

    def spec_words(self) -> list[str]:
        return [self.spec.scenario, self.spec.method, f"seed {self.spec.seed}"]

    def checkpoint(self, *args, **kwargs):
        """Interrupt the run as Ctrl-C does (it records ``interrupted`` with its finished tasks) and requeue
        the same run with ``--resume``. SIGCONT wakes a run SLURM suspended, so it can handle the SIGINT."""
        import submitit

        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()  # still consistent: the results file only ever lists committed tasks
        return submitit.helpers.DelayedSubmission(RunJob(self.spec, self.out, self.device, self.extra, True,
                                                         self.cwd, self.env))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "proc": None}


# -- submitting -------------------------------------------------------------------------------------------
def pending(specs: list[RunSpec], *, out: str, device: str, backbone: str | None, overrides: list[str],
            fresh: bool) -> tuple[list[RunSpec], list[RunSpec]]:
    """(runs to submit, runs already finished). A results file written with another config is refused here,
    before anything is queued, instead of failing in every job of the array."""
    if fresh:
        return list(specs), []
    from . import registry
    from .config import make_config, parse_set, same_config

    todo, finished, clashes = [], [], []
    for spec in specs:
        path = results_path(out, spec.scenario, spec.method, spec.seed)
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            todo.append(spec)  # missing or unreadable: the run itself reports an unreadable file
            continue
        cfg = make_config(method=registry.get_method(spec.method), scenario=registry.get_scenario(spec.scenario),
                          backbone=backbone, pretrained=None, seed=spec.seed, device=device, out=out,
                          overrides=parse_set(overrides))
        diff = same_config(res.get("config") or {}, cfg.to_dict())
        if diff:
            clashes.append(f"{path} (differs in {', '.join(diff)})")
        elif res.get("status") == "finished":
            finished.append(spec)
        else:
            todo.append(spec)
    if clashes:
        more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
        raise UserError(f"results written with another config: {clashes[0]}{more}; use the same options, "
                        "another --out, or --fresh to start them again")
    return todo, finished


def submit(executor, specs: list[RunSpec], *, out: str, device: str, extra: list[str], fresh: bool = False):
    """Submit one job per run as one job array; returns submitit's jobs in the order of ``specs``."""
    jobs = [RunJob(spec, out, device, extra, resume=not fresh) for spec in specs]
    if not jobs:
        return []
    return executor.submit_array(jobs)
