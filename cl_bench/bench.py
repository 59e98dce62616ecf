"""``cl-bench bench``: training and evaluation throughput, peak memory and model-FLOPs utilisation of one
method on one backbone, measured on a synthetic in-memory task (docs/bench.md).

Training runs the method's real step: its plugins and the CLStrategy are built exactly as the runner builds
them, so LoRA adapters, KeepLoRA's projections or a distillation teacher cost what they cost in a run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import Dataset

from . import flops, registry
from . import precision as precisions
from .api import BuiltScenario, RunContext, Scenario, Task
from .errors import UserError
from .protocols import TASK_INCREMENTAL

SCHEMA = "cl-bench-bench/1"
# Batches of synthetic images per epoch of the task (the loader cycles over them); every batch is full.
BATCHES_PER_EPOCH = 4


def _no_build(params, backbone, seed):  # the bench builds its task itself
    raise RuntimeError("the bench scenario is built by cl_bench.bench")


# Parameters resolve against a scenario whose profile no method tunes, so each method runs its own
# (paper-scale) defaults; weights do not change speed, so open_clip backbones default to random ones.
BENCH_SCENARIO = Scenario(name="bench", description="synthetic task of random images (cl-bench bench)",
                          protocol=TASK_INCREMENTAL, version="bench-1", profile="bench", defaults={}, build=_no_build,
                          default_backbone="ViT-B-16", default_pretrained="none")


class RandomImages(Dataset):
    """Random images already at the backbone's resolution, labels cycling over the classes."""

    def __init__(self, n: int, size: int, classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=g)
        self.targets = [i % classes for i in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return self.images[i], self.targets[i]


class StepClock(SupervisedPlugin):
    """The time at the end of every training iteration (after the optimizer step, device synchronised), and
    whether the text tower was trained (its features are then recomputed every step)."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device
        self.times: list[float] = []
        self.text_trains = False

    def after_training_iteration(self, strategy, **kw):
        _sync(self.device)
        self.times.append(time.perf_counter())
        self.text_trains |= strategy.model.text_trainable()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the measurement ----------------------------------------------------------------------------------------
def _check(name: str, value, lo) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo:
        raise UserError(f"--{name} must be a number >= {lo}, got {value!r}")


def run_bench(*, backbone: str = "tiny-test", pretrained: str | None = None, method: str = "lora",
              batch_size: int = 64, steps: int = 20, warmup: int = 5, classes: int = 10, precision: str = "auto",
              compile: bool = False, peak_tflops: float | None = None, device: str = "auto",
              overrides: Mapping[str, Any] | None = None, log=print) -> dict:
    """Measure one (backbone, method) and return the report (the JSON written by ``cl-bench bench``)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    from .backbone import load_backbone
    from .classifier import CLIPClassifier
    from .config import make_config
    from .runner import device_name, peak_memory_mb, resolve_device, seed_everything, versions
    from .strategy import CLStrategy

    for name, value, lo in (("batch-size", batch_size, 1), ("steps", steps, 1), ("warmup", warmup, 1),
                            ("classes", classes, 2)):
        _check(name, value, lo)
    if peak_tflops is not None and not (isinstance(peak_tflops, (int, float)) and peak_tflops > 0):
        raise UserError(f"--peak-tflops must be a number > 0 (the device's dense peak in TFLOP/s), got {peak_tflops!r}")
    dev = resolve_device(device)
    effective = precisions.resolve(precision, dev)
    m = registry.get_method(method)
    cfg = make_config(method=m, scenario=BENCH_SCENARIO, backbone=backbone, pretrained=pretrained, seed=0,
                      device=str(dev), out="", overrides={**(overrides or {}), "batch_size": batch_size,
                                                          "iterations": warmup + steps, "num_workers": 0,
                                                          "precision": effective})
    p = cfg.params
    seed_everything(0)
    bb = load_backbone(cfg.backbone, cfg.pretrained, log=log)
    arch = flops.clip_architecture(bb.model)
    size = int(bb.image_size)

    prompts = [[f"a photo of a class {c}."] for c in range(classes)]
    data = RandomImages(batch_size * BATCHES_PER_EPOCH, size, classes)
    task = Task("synthetic", data, data, prompts, prompts)
    built = BuiltScenario([task], TASK_INCREMENTAL, {"synthetic": True})
    clf = CLIPClassifier(bb.model, bb.tokenizer).to(dev)
    for prm in clf.parameters():
        prm.requires_grad_(False)
    if compile:
        clf.clip.visual.compile()  # in place: parameter names (which methods select by) stay as they are
    ctx = RunContext(cfg, p, clf, built, dev, bb, effective)
    method_plugin = m(ctx)
    clock = StepClock(dev)
    strategy = CLStrategy(model=clf, method=method_plugin, params=p, plugins=[*method_plugin.extra_plugins(), clock],
                          device=dev)
    stream = benchmark_from_datasets(train=[AvalancheDataset([data])], test=[AvalancheDataset([data])])
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    train = None
    if m.TRAINS:
        clf.set_prompts(prompts, key=task.name)
        strategy.train(stream.train_stream[0])
        if len(clock.times) < warmup + steps:
            raise RuntimeError(f"{method} ran {len(clock.times)} training steps, expected {warmup + steps}")
        seconds = clock.times[warmup + steps - 1] - clock.times[warmup - 1]
        train = {"images_per_s": steps * batch_size / seconds, "step_ms": 1000 * seconds / steps,
                 "text_tower_trains": clock.text_trains, "trainable_params": strategy.trainable_count}

    eval_bs = int(p["eval_batch_size"])
    clf.eval()
    clf.set_prompts(prompts, key=task.name)
    x = torch.randn(eval_bs, 3, size, size, generator=torch.Generator().manual_seed(1)).to(dev)
    with torch.no_grad(), precisions.autocast(effective, dev):
        for _ in range(warmup):
            clf(x)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            clf(x)
        _sync(dev)
        eval_seconds = time.perf_counter() - t0
    evaluation = {"images_per_s": steps * eval_bs / eval_seconds, "batch_ms": 1000 * eval_seconds / steps}

    # FLOPs from the architecture (docs/bench.md)
    tokens = bb.tokenizer([q for group in prompts for q in group])
    prompt_len = int(tokens.argmax(dim=-1).max()) + 1  # the text tower runs up to the longest prompt's EOT
    image_f = flops.vit_flops(**arch["vision"])
    text_f = flops.text_flops(arch["text"], prompt_len)
    embed = arch["vision"]["embed"]
    counts = {"image_forward": image_f, "text_forward_per_prompt": text_f, "prompt_tokens": prompt_len,
              "eval_per_image": image_f + flops.logits_flops(1, classes, embed)}
    if train is not None:
        counts["train_step"] = flops.train_step_flops(batch=batch_size, image=image_f, text_per_prompt=text_f,
                                                      prompts=classes, embed=embed,
                                                      text_trains=train["text_tower_trains"])
        train["tflops"] = counts["train_step"] / (train["step_ms"] / 1000) / 1e12
    evaluation["tflops"] = counts["eval_per_image"] * evaluation["images_per_s"] / 1e12

    peak, peak_source = _peak(dev, effective, peak_tflops)
    for part in (train, evaluation):
        if part is not None:
            part["mfu"] = part["tflops"] / peak if peak else None

    return {
        "schema": SCHEMA, "method": m.NAME, "backbone": {"name": bb.name, "pretrained": bb.pretrained,
                                                         "image_size": size, "architecture": arch},
        "device": device_name(dev), "precision": effective, "precision_requested": precision,
        "compile": bool(compile), "batch_size": batch_size, "eval_batch_size": eval_bs, "steps": steps,
        "warmup_steps": warmup, "classes": classes, "train": train, "eval": evaluation, "flops": counts,
        "peak_tflops": peak, "peak_source": peak_source,
        "peak_memory_mb": peak_memory_mb(dev),
        "peak_memory_kind": "cuda max_memory_allocated" if dev.type == "cuda" else "process peak RSS",
        "params": {k: v for k, v in p.items() if k in ("batch_size", "iterations", "lr", "rank", "precision")},
        "versions": versions(),
    }


def _peak(dev: torch.device, precision: str, given: float | None) -> tuple[float | None, str | None]:
    if given is not None:
        return float(given), "--peak-tflops"
    if dev.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(dev)
    found = flops.lookup_peak(name, precision)
    if found is None:
        return None, f"unknown device {name!r}: pass --peak-tflops"
    return found[1], f"table: {found[0]} {precision} dense"


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; give a file name such as {path / 'bench.json'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)
    return path


def report_table(report: dict):
    from rich.table import Table

    t = Table(title=f"bench: {report['method']} on {report['backbone']['name']} ({report['device']}, "
                    f"{report['precision']}{', compiled' if report['compile'] else ''})", title_justify="left")
    t.add_column("", style="bold")
    t.add_column("img/s", justify="right")
    t.add_column("batch", justify="right")
    t.add_column("ms / batch", justify="right")
    t.add_column("TFLOP/s", justify="right")
    t.add_column("MFU", justify="right")
    for name, part, bs, ms in (("train", report["train"], report["batch_size"], "step_ms"),
                               ("eval", report["eval"], report["eval_batch_size"], "batch_ms")):
        if part is None:
            t.add_row(name, "–", str(bs), "–", "–", "–")
            continue
        mfu = "–" if part["mfu"] is None else f"{100 * part['mfu']:.1f}%"
        t.add_row(name, f"{part['images_per_s']:,.0f}", str(bs), f"{part[ms]:.1f}", f"{part['tflops']:.3g}", mfu)
    t.caption = (f"peak memory {report['peak_memory_mb'] / 1024:.2f} GiB ({report['peak_memory_kind']}); peak "
                 f"{report['peak_tflops'] or '–'} TFLOP/s ({report['peak_source'] or 'none on CPU: --peak-tflops'})")
    t.caption_justify = "left"
    return t
