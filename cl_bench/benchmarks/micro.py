"""Embedded scenarios that run anywhere with no downloads: ``mtil-micro`` (task-incremental over six
small domains, like MTIL) and ``cil-micro`` (class-incremental over a pool of classes, like CIFAR-100)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cl_bench.api import BuiltScenario, Scenario, Task
from cl_bench.classifier import class_prompts
from cl_bench.errors import UserError
from cl_bench.protocols import CLASS_INCREMENTAL, TASK_INCREMENTAL

from . import micro_world as world

MTIL_ORDER = ["digits", "textures", "glyphs", "outlines", "colours"]


class ArrayDataset(Dataset):
    """uint8 images (N, H, W, 3) with int labels. With a tensor ``pre`` (the backbone's transform applied once
    to the whole batch) items are slices of it; otherwise each image goes through the backbone's PIL transform
    (e.g. resize to 224 for ViT-B-16)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None, pre: torch.Tensor | None = None):
        self.images, self.targets = images, [int(y) for y in labels]
        self.transform, self.pre = transform, pre

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        x = self.pre[i] if self.pre is not None else self.transform(Image.fromarray(self.images[i]))
        return x, self.targets[i]


def make_dataset(images, labels, backbone) -> ArrayDataset:
    """Images already at the backbone's input size (the tiny backbones' 32 px) are normalised in one batch."""
    if images.shape[1:3] == (backbone.image_size, backbone.image_size) and backbone.mean is not None:
        return ArrayDataset(images, labels, pre=backbone.normalize(torch.from_numpy(images)))
    return ArrayDataset(images, labels, transform=backbone.transform)


def _check_domains(names) -> list[str]:
    names = list(names)
    bad = [n for n in names if n not in world.DOMAINS]
    if bad or not names:
        raise UserError(f"unknown micro domain(s) {bad}; valid: {', '.join(world.DOMAINS)} "
                        "(e.g. --set tasks=[digits,shapes])")
    return names


def _split(params) -> str:
    split = params.get("eval_split", "test")  # scenarios built on build_mtil may not have the key
    if split not in world.EVAL_SPLITS:
        raise UserError(f"eval_split={split!r}: use test (the default) or val (held-out images for tuning)")
    return split


def build_mtil(params, backbone, seed) -> BuiltScenario:
    tasks = []
    for name in _check_domains(params["tasks"]):
        d = world.DOMAINS[name]
        (xtr, ytr), (xte, yte) = world.domain_split(name, params["train_per_class"], params["test_per_class"], 0,
                                                    _split(params))
        prompts = class_prompts(d.classnames, [d.template])
        tasks.append(Task(name, make_dataset(xtr, ytr, backbone), make_dataset(xte, yte, backbone),
                          prompts, prompts))
    return BuiltScenario(tasks, TASK_INCREMENTAL, {"order": [t.name for t in tasks], "prompts": "single"})


# cil-micro: one pool of 30 classes from three families, each class with its family's template.
CIL_POOL = ([("shapes", c) for c in world.SHAPES] + [("digits", c) for c in world.DIGIT_NAMES]
            + [("glyphs", c) for c in world.GLYPH_NAMES])


def cil_class_order(seed: int = 1993) -> list[int]:
    """A fixed shuffled class order (like CIFAR-100's class_orders file): part of the scenario version."""
    return [int(k) for k in np.random.default_rng(seed).permutation(len(CIL_POOL))]


def build_cil(params, backbone, seed) -> BuiltScenario:
    steps = params["steps"]
    order = cil_class_order()
    if len(order) % steps:
        raise UserError(f"cil-micro has {len(order)} classes; steps must divide it (1, 2, 3, 5, 6, 10, 15, 30)")
    ntr, nte = params["train_per_class"], params["test_per_class"]
    data = {}
    for fam in ("shapes", "digits", "glyphs"):
        (xtr, ytr), _ = world.domain_split(fam, ntr, 1, 0)
        _, (xte, yte) = world.domain_split(fam, 1, nte, 0, _split(params))
        data[fam] = (xtr, ytr, xte, yte)
    inc = len(order) // steps
    tasks = []
    for s in range(steps):
        cls = order[s * inc:(s + 1) * inc]
        xs_tr, ys_tr, xs_te, ys_te = [], [], [], []
        for local, k in enumerate(cls):
            fam, name = CIL_POOL[k]
            xtr, ytr, xte, yte = data[fam]
            idx = world.DOMAINS[fam].classnames.index(name)
            xs_tr.append(xtr[ytr == idx])
            ys_tr.append(np.full((ytr == idx).sum(), local))
            xs_te.append(xte[yte == idx])
            ys_te.append(np.full((yte == idx).sum(), s * inc + local))  # position in the class order
        prompts = [[world.DOMAINS[CIL_POOL[k][0]].template.format(CIL_POOL[k][1])] for k in cls]
        tasks.append(Task(f"step{s}", make_dataset(np.concatenate(xs_tr), np.concatenate(ys_tr), backbone),
                          make_dataset(np.concatenate(xs_te), np.concatenate(ys_te), backbone), prompts, prompts))
    return BuiltScenario(tasks, CLASS_INCREMENTAL, {"class_order": [int(k) for k in order], "steps": steps,
                                        "prompts": "single"})


MTIL_MICRO = Scenario(
    name="mtil-micro",
    description="6 procedurally generated domains (printed digits, textures, glyphs, shapes, outlines, colours), "
                "task-incremental like MTIL; CPU-sized, no downloads",
    protocol=TASK_INCREMENTAL, version=f"mtil-micro-2/{world.WORLD_VERSION}", profile="micro",
    defaults={"tasks": MTIL_ORDER, "train_per_class": 200, "test_per_class": 40, "eval_split": "test"},
    build=build_mtil, default_backbone="tiny", default_pretrained=None,
)

CIL_MICRO = Scenario(
    name="cil-micro",
    description="30 classes (shapes, printed digits, made-up glyphs) in 5 class-incremental steps, "
                "joint classifier over the classes seen so far; CPU-sized, no downloads",
    protocol=CLASS_INCREMENTAL, version=f"cil-micro-2/{world.WORLD_VERSION}", profile="micro",
    defaults={"steps": 5, "train_per_class": 200, "test_per_class": 40, "eval_split": "test"},
    build=build_cil, default_backbone="tiny", default_pretrained=None,
)
