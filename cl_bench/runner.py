"""The run loop: zero-shot evaluation, then for each task train on it and evaluate every task's test set,
writing the results file (and a model checkpoint) after every task so nothing finished is ever lost."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.utils import AvalancheDataset

from . import __version__, checkpoint, faults, precision, registry
from .backbone import load_backbone
from .classifier import CLIPClassifier
from .config import RunConfig, operational_keys, same_config
from .device_pixels import use_device_pixels
from .errors import UserError
from .lora import plain_state_dict
from .method import RunContext
from .results import compute_metrics, load_results, new_results, results_path, write_results
from .strategy import AccuracyCounter, CLStrategy


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def task_seed(seed: int, task: int) -> int:
    """Each task reseeds from (run seed, task), so a resumed run continues exactly as an uninterrupted one."""
    return seed * 1000 + task + 1


def versions() -> dict:
    import avalanche
    import open_clip

    return {"cl_bench": __version__, "git_commit": git_commit(), "python": platform.python_version(),
            "torch": torch.__version__, "open_clip": open_clip.__version__,
            "avalanche": getattr(avalanche, "__version__", "0.6.0")}


def git_commit(where: Path = Path(__file__).parent) -> str | None:
    """Short commit of the code that runs, with "-dirty" when tracked files differ from it (the results
    then come from code that no commit holds)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=where, timeout=5).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        if not commit:
            return None
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


class Run:
    """One method on one scenario with one seed. ``execute`` is resumable."""

    def __init__(self, cfg: RunConfig, *, progress=None, log=print):
        self.cfg = cfg
        self.progress = progress
        self.log = log
        self.method = registry.get_method(cfg.method)
        self.scenario = registry.get_scenario(cfg.scenario)
        self.device = resolve_device(cfg.device)
        self.precision = precision.resolve(cfg.params["precision"], self.device)
        self.path = results_path(cfg.out, cfg.scenario, cfg.method, cfg.seed)
        self.ckpt = self.path.with_suffix(".ckpt.pt")

    # -- set-up -----------------------------------------------------------------------------------------
    def setup(self) -> None:
        seed_everything(self.cfg.seed)
        self.backbone = load_backbone(self.cfg.backbone, self.cfg.pretrained, progress=self.progress, log=self.log)
        self.built = self.scenario.build(self.cfg.params, self.backbone, self.cfg.seed)
        epochs, T = self.cfg.params["epochs"], len(self.built.tasks)
        if isinstance(epochs, list) and len(epochs) != T:
            raise UserError(f"epochs={epochs} has {len(epochs)} entries but {self.cfg.scenario} has {T} tasks: give "
                            "one per task, or a single integer")
        self.classifier = CLIPClassifier(self.backbone.model, self.backbone.tokenizer).to(self.device)
        if self.device.type == "cuda":  # cached uint8 pixels travel as uint8 and are normalised on the GPU
            self.built.info["device_pixels"] = use_device_pixels(self.built, self.classifier.clip, self.backbone)
        for p in self.classifier.parameters():
            p.requires_grad_(False)  # methods opt parameters in explicitly
        self.ctx = RunContext(self.cfg, self.cfg.params, self.classifier, self.built, self.device, self.backbone,
                              self.precision)
        self.plugin, self.counter = self.method(self.ctx), AccuracyCounter()
        self.strategy = CLStrategy(model=self.classifier, method=self.plugin, params=self.cfg.params,
                                   plugins=[*self.plugin.extra_plugins(), self.counter], device=self.device,
                                   progress=self.progress)
        tasks = self.built.tasks
        self.bench = benchmark_from_datasets(train=[AvalancheDataset([t.train]) for t in tasks],
                                             test=[AvalancheDataset([t.test]) for t in tasks])

    def fresh_results(self) -> dict:
        b = self.backbone
        return new_results(
            method=self.cfg.method, scenario=self.cfg.scenario, scenario_version=self.scenario.version,
            protocol=self.built.protocol, seed=self.cfg.seed, config=self.cfg.to_dict(),
            backbone={"name": b.name, "pretrained": b.pretrained,
                      "prompts": self.built.info.get("prompts", "single"), "precision": self.precision},
            versions=versions(), device=device_name(self.device),
            tasks=[t.name for t in self.built.tasks], test_sizes=[len(t.test) for t in self.built.tasks],
            switches=self.plugin.switches(), operational=self.operational(),
            scenario_keys=self.scenario.defaults) | {"scenario_info": self.built.info}

    def operational(self) -> frozenset[str]:
        """Keys that may differ between this run and one it resumes or averages with (docs/results-format.md)."""
        return operational_keys(self.method, self.scenario)

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, after: int | None) -> list[float | None]:
        T = len(self.built.tasks)
        row: list[float | None] = [None] * T
        bar = self.progress.add_task("evaluate", total=T) if self.progress else None
        for j in self.built.evaluated(after):
            self.classifier.set_prompts(self.built.eval_prompts(j, after), key=self.built.eval_key(j, after),
                                        parts=self.built.eval_parts(j, after))
            self.strategy.eval(self.bench.test_stream[j])
            row[j] = self.counter.accuracy
            faults.point("eval", -1 if after is None else after)
            if bar is not None:
                self.progress.update(bar, advance=1)
        if bar is not None:
            self.progress.remove_task(bar)
        return row

    # -- the loop ---------------------------------------------------------------------------------------
    def execute(self, *, resume: bool = False, stop_after: int | None = None) -> dict:
        """Run (or continue) the whole sequence. ``stop_after``: return after that many tasks (tests).

        Commit point per task (docs/crash-consistency.md): the checkpoint, holding task t's results record,
        is written before the results file that lists task t. A failure or Ctrl-C writes only what was
        committed, so the results file never lists a task whose model state is lost."""
        if not hasattr(self, "strategy"):
            self.setup()
        T = len(self.built.tasks)
        checkpoint.remove_stale_temporaries(self.path)
        res, start = self.resume_point() if resume and self.path.is_file() else (self.fresh_results(), 0)
        if res["status"] == "finished":
            return res
        try:
            if res["zero_shot"] is None:
                res["zero_shot"] = self.evaluate(None)
                write_results(res, self.path)
            for t in range(start, T):
                if stop_after is not None and t >= stop_after:
                    return res
                record = self.run_task(t, res["zero_shot"])
                if t < T - 1:
                    checkpoint.save(self.ckpt, task=t, identity=checkpoint.run_identity(self.cfg),
                                    model=plain_state_dict(self.classifier.clip), method=self.plugin.state_dict(),
                                    record=record)
                    faults.point("commit", t)
                res = self.committed(res, record)
                write_results(res, self.path)
                faults.point("results" if t < T - 1 else "final", t)
            self.ckpt.unlink(missing_ok=True)
        except KeyboardInterrupt:
            self.mark(res, "interrupted", "interrupted by the user (resume with --resume)")
            raise
        except Exception as e:
            self.mark(res, "failed", f"{type(e).__name__}: {e}")
            raise
        return res

    def mark(self, res: dict, status: str, error: str) -> None:
        """Record why the run stopped, in its last committed state (a finished run stays finished)."""
        if res["status"] != "finished":
            res["status"], res["error"] = status, error
            write_results(res, self.path)

    def committed(self, res: dict, record: dict) -> dict:
        """``res`` with one more finished task (a new dict: ``res`` itself stays the last committed state)."""
        res = dict(res, per_task=[*res["per_task"], {k: v for k, v in record.items() if k != "row"}],
                   matrix=[*res["matrix"], record["row"]])
        res["metrics"] = compute_metrics(res)
        res["status"] = "finished" if len(res["matrix"]) == len(self.built.tasks) else "running"
        return res

    def resume_point(self) -> tuple[dict, int]:
        """The results so far and the first task to run, after restoring the model and method state."""
        res = load_results(self.path)
        diff = same_config(res["config"], self.cfg.to_dict(), self.operational())
        if diff:
            raise UserError(f"cannot resume {self.path}: its config differs in {', '.join(diff)}; "
                            "use the same options or drop --resume")
        if res["status"] == "finished" or len(res["matrix"]) == len(self.built.tasks):
            if res["status"] != "finished":  # killed after the last task's results write: mark it finished
                res["status"], res["error"], res["metrics"] = "finished", None, compute_metrics(res)
                write_results(res, self.path)
            self.ckpt.unlink(missing_ok=True)
            self.log(f"{self.path} is already finished; nothing to resume")
            return res, len(res["matrix"])
        done = len(res["matrix"])
        state = checkpoint.load(self.ckpt, self.device, checkpoint.run_identity(self.cfg), self.operational())
        if state is None and done > 0:
            raise UserError(f"cannot resume: checkpoint {self.ckpt} is missing, so the model after the {done} "
                            f"finished task(s) in {self.path} is lost; re-run without --resume")
        if state is not None and state["task"] not in (done - 1, done):
            raise UserError(f"cannot resume: checkpoint {self.ckpt} is for task {state['task']} but {self.path} "
                            f"has {done} finished task(s); re-run without --resume")
        if state is not None:
            self.classifier.clip.load_state_dict(state["model"])
            self.plugin.load_state_dict(state["method"])
            if state["task"] == done:  # killed between the checkpoint and the results write: replay the record
                res = self.committed(res, state["record"])
        res["status"], res["error"] = "running", None
        write_results(res, self.path)
        self.log(f"resuming {self.path} after {len(res['matrix'])} finished task(s)")
        return res, len(res["matrix"])

    def run_task(self, t: int, zero_shot: list | None = None) -> dict:
        task = self.built.tasks[t]
        seed_everything(task_seed(self.cfg.seed, t))
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        trainable = images = 0
        if self.method.TRAINS:
            self.classifier.set_prompts(task.train_prompts, key=task.name)
            self.strategy.train(self.bench.train_stream[t])
            trainable, images = self.strategy.trainable_count, self.strategy.train_images
        t1 = time.perf_counter()
        if not self.method.TRAINS and self.built.protocol.fixed_class_sets and zero_shot is not None:
            row = list(zero_shot)  # the model never changes and neither do the class sets: same row
        else:
            row = self.evaluate(t)
        t2 = time.perf_counter()
        return {"task": task.name, "wall_time_s": t2 - t0, "train_time_s": t1 - t0, "eval_time_s": t2 - t1,
                "peak_memory_mb": peak_memory_mb(self.device), "trainable_params": trainable, "train_images": images,
                "extra": self.plugin.task_report(), "row": row}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    # Peak RSS of the process so far (Linux reports KiB).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
