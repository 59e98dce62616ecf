"""Real-data scenarios (PROTOCOL.md G.1-G.7): ``mtil`` (Order I), ``mtil-order2``, ``mtil-fewshot`` (5 shots
per class), ``cil-cifar100`` (10/20/50 steps) and ``cil-tinyimagenet`` (100 base classes + 5/10/20 steps).

Any backbone runs any scenario: images go through the backbone's CLIP test transform (a tiny backbone's
transform gets a bicubic resize + centre crop to its input size in front), and ``train_transform: rrc``
swaps the training geometry for ZSCL's ``RandomResizedCrop(size, scale=(0.9, 1), bicubic)``.

Prompt conventions (scenario param ``prompts``):

* ``single`` (KeepLoRA): one template per dataset, the same for training and evaluation (KeepLoRA's
  templates[0], which differs from ZSCL's for DTD, StanfordCars and SUN397);
* ``ensemble`` (ZSCL / MoE-Adapters): training with ZSCL's templates[0], evaluation with every template of the
  dataset averaged (the classifier averages normalised embeddings per class).

For CIL the reference runs (ZSCL ``cil/``, MoE-Adapters) use the single template "a bad photo of a {}." and
continuum's class names (CIFAR100 keeps underscores). ``ensemble`` there is a cl-bench addition: training with
that template, evaluation with it plus the 17 other CLIP CIFAR templates.

Datasets stored as image files are preprocessed once into a pixel cache (``cache_preprocessed``, default on;
cl_bench/benchmarks/pixel_cache.py), bit-identical to decoding them. Only deterministic transforms are cached
(the test transform always; training images only with ``train_transform: test``); CIFAR100 and MNIST live in
memory as arrays and are not cached.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from cl_bench.api import BuiltScenario, Scenario, Task
from cl_bench.classifier import class_prompts
from cl_bench.errors import UserError
from cl_bench.protocols import CLASS_INCREMENTAL, TASK_INCREMENTAL

from .pixel_cache import Pipeline, prepare
from .real import (
    MTIL_ORDER_I,
    MTIL_ORDER_II,
    check_data,
    cil_task_classes,
    few_shot_indices,
    get_cil_spec,
    get_spec,
    load_cil_split,
    load_mtil_splits,
    save_split_file,
    task_indices,
)

DATA_ENV = "CL_BENCH_DATA"
PROMPT_CONVENTIONS = ("single", "ensemble")
TRAIN_TRANSFORMS = ("test", "rrc")
CIL_TEMPLATE = "a bad photo of a {}."  # ZSCL cil/ and MoE-Adapters CIL configs (METHODS.md B.4, C.4)
# Version of the data layer shared by the five scenarios: part of each scenario's version and of the cache
# key (not the scenario name, so mtil, mtil-order2 and mtil-fewshot share their cached images).
DATA_VERSION = "1"
RRC_SCALE = (0.9, 1.0)


# --- data root -----------------------------------------------------------------------------------------------


def resolve_data_root(value: str | os.PathLike | None) -> Path:
    """The data root from the ``data_root`` param (or ``--data-root``), else ``$CL_BENCH_DATA``."""
    raw = str(value or "") or os.environ.get(DATA_ENV, "")
    if not raw:
        raise UserError(f"no data root: pass --data-root DIR (or --set data_root=DIR) or set {DATA_ENV}=DIR, "
                        "DIR holding the dataset folders (fgvc-aircraft-2013b, caltech101, cifar-100-python, ...; "
                        "see `cl-bench data check --scenario mtil --data-root DIR`)")
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise UserError(f"data root {root} is not a folder (from --data-root, data_root or {DATA_ENV}); "
                        "point it at the folder that holds the dataset folders")
    return root


@dataclass(frozen=True)
class OnDiskData:
    """What a real scenario reads from disk, as ``Scenario.data``: the core reaches the data root and
    `cl-bench data check` through it."""

    datasets: tuple[str, ...]

    def resolve_root(self, value: str | os.PathLike | None) -> Path:
        return resolve_data_root(value)

    def check(self, root: Path, deep: bool = False) -> list:
        """One ``real.CheckRow`` per dataset: found, missing or wrongly laid out."""
        return check_data(list(self.datasets), root, deep=deep)

    def images(self, dataset: str, split: str, root: Path, backbone):
        """A class-incremental dataset's split at the backbone's test transform (reference images for methods
        such as MoE-Adapters' DDAS)."""
        return load_cil_split(dataset, root, split, transform=make_pipeline(backbone, "test").test)


def _choice(key: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UserError(f"{key}={value!r} is not valid; use one of {', '.join(choices)}")
    return value


# --- transforms ----------------------------------------------------------------------------------------------


def _geometric(step) -> bool:
    name = type(step).__name__
    return any(word in name for word in ("Resize", "Crop", "Pad"))


def _identity(steps) -> str:
    """A transform's repr without memory addresses (function objects print them), stable across processes."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(T.Compose(list(steps))))


def make_pipeline(backbone, train_transform: str) -> Pipeline:
    """The backbone's test transform (which brings any image to its input size), and the training transform."""
    _choice("train_transform", train_transform, TRAIN_TRANSFORMS)
    size = int(backbone.image_size)
    tf = backbone.transform
    steps = list(tf.transforms) if isinstance(tf, T.Compose) else [tf]
    test = T.Compose(steps)
    if train_transform == "rrc":
        train = T.Compose([T.RandomResizedCrop(size, scale=RRC_SCALE, interpolation=InterpolationMode.BICUBIC),
                           *[s for s in steps if not _geometric(s)]])
    else:
        train = test
    k = next((i for i, s in enumerate(steps) if isinstance(s, T.ToTensor)), None)
    prefix = T.Compose(steps[:k]) if k else None
    tail = T.Compose(steps[k:]) if k else None
    return Pipeline(test, train, train is test, prefix, tail, _identity(steps[:k] if k else steps), size)


def _prepare_task(train, test, name, pipeline, params):
    common = dict(pipeline=pipeline, cache=bool(params["cache_preprocessed"]), version=f"real-{DATA_VERSION}",
                  num_workers=int(params.get("num_workers", 0)))
    return (prepare(train, pipeline.train, deterministic=pipeline.train_is_test, tag=f"{name}-train", **common),
            prepare(test, pipeline.test, deterministic=True, tag=f"{name}-test", **common))


# --- MTIL ----------------------------------------------------------------------------------------------------


def _task_names(value) -> list[str]:
    if isinstance(value, str):
        value = [value]
    names = [get_spec(str(n)).name for n in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if not names or duplicates:
        raise UserError(f"tasks must list distinct MTIL datasets (duplicates: {duplicates or 'none'}), e.g. "
                        f"--set tasks=[DTD,MNIST]; choose from {', '.join(MTIL_ORDER_I)}")
    return names


def mtil_prompts(spec, convention: str) -> tuple[list[list[str]], list[list[str]]]:
    """(train prompts, eval prompts) per class of an MTIL dataset under a prompt convention."""
    if convention == "single":
        prompts = class_prompts(spec.classnames, [spec.template_single])
        return prompts, prompts
    return (class_prompts(spec.classnames, [spec.templates_ensemble[0]]),
            class_prompts(spec.classnames, spec.templates_ensemble))


def _split_file(spec, root: Path, split_dir: str) -> Path | None:
    """``<split_file_dir>/<Dataset>.json`` for the randomly split datasets; written from the current split
    when absent, so later runs (and other machines given the same folder) use exactly this split."""
    if not split_dir or not spec.random_split:
        return None
    folder = Path(split_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"split_file_dir {folder} is not a folder; create it or leave split_file_dir empty")
    path = folder / f"{spec.name}.json"
    if not path.is_file():
        save_split_file(spec.name, root, path)
    return path


@dataclass(frozen=True)
class MTILBuild:
    """``build`` of the MTIL scenarios."""

    scenario: str
    order: tuple[str, ...]
    fewshot: bool = False

    def __call__(self, params: Mapping, backbone, seed: int) -> BuiltScenario:
        root = resolve_data_root(params["data_root"])
        convention = _choice("prompts", params["prompts"], PROMPT_CONVENTIONS)
        pipeline = make_pipeline(backbone, params["train_transform"])
        names = _task_names(params["tasks"])
        if self.fewshot and int(params["shots"]) < 1:
            raise UserError(f"shots={params['shots']} must be at least 1")
        loaded, split_files = [], {}
        for name in names:  # read every index first: a missing dataset fails before any preprocessing
            spec = get_spec(name)
            split_file = _split_file(spec, root, params["split_file_dir"])
            if split_file is not None:
                split_files[spec.name] = str(split_file)
            train, test = load_mtil_splits(spec.name, root, split_file=split_file)
            if self.fewshot:
                train = train.subset(few_shot_indices(train.targets, int(params["shots"]), int(params["shots_seed"])))
            loaded.append((spec, train, test))
        tasks = []
        for spec, train, test in loaded:
            train_prompts, eval_prompts = mtil_prompts(spec, convention)
            tr, te = _prepare_task(train, test, spec.name, pipeline, params)
            tasks.append(Task(spec.name, tr, te, train_prompts, eval_prompts))
        info = {"order": [t.name for t in tasks], "prompts": convention, "train_transform": params["train_transform"],
                "data_root": str(root), "train_sizes": [len(t.train) for t in tasks]}
        if self.fewshot:
            info |= {"shots": int(params["shots"]), "shots_seed": int(params["shots_seed"])}
        if split_files:
            info["split_files"] = split_files
        return BuiltScenario(tasks, TASK_INCREMENTAL, info)


# --- class-incremental ---------------------------------------------------------------------------------------


def cil_templates(convention: str) -> tuple[str, ...]:
    """Evaluation templates of the CIL scenarios; [0] is the training template."""
    if convention == "single":
        return (CIL_TEMPLATE,)
    return (CIL_TEMPLATE, *[t for t in get_spec("CIFAR100").templates_ensemble if t != CIL_TEMPLATE])


@dataclass(frozen=True)
class CILBuild:
    """``build`` of the class-incremental scenarios (the contract of benchmarks/micro.py ``build_cil``):
    train labels local to the step's new classes, test labels = position in the class order, eval prompts
    per step (the runner's joint classifier concatenates those of the steps seen so far)."""

    scenario: str
    dataset: str

    def __call__(self, params: Mapping, backbone, seed: int) -> BuiltScenario:
        root = resolve_data_root(params["data_root"])
        convention = _choice("prompts", params["prompts"], PROMPT_CONVENTIONS)
        pipeline = make_pipeline(backbone, params["train_transform"])
        spec = get_cil_spec(self.dataset)
        steps = int(params["steps"])
        groups = cil_task_classes(spec.name, steps)
        train_all = load_cil_split(spec.name, root, "train")
        test_all = load_cil_split(spec.name, root, "test")
        names, templates = spec.classnames, cil_templates(convention)
        tasks = []
        for classes in groups:
            start, end = classes[0], classes[-1]
            local = [-1] * len(names)
            for k in classes:
                local[k] = k - start
            step_names = [names[k] for k in classes]
            train = train_all.subset(task_indices(train_all.targets, classes)).relabel(local, step_names)
            test = test_all.subset(task_indices(test_all.targets, classes))  # labels stay class-order positions
            label = f"classes {start}-{end}"
            tr, te = _prepare_task(train, test, f"{spec.name}-{label.replace(' ', '')}", pipeline, params)
            tasks.append(Task(label, tr, te, class_prompts(step_names, templates[:1]),
                              class_prompts(step_names, templates)))
        info = {"dataset": spec.name, "class_order": [int(c) for c in spec.class_order], "steps": steps,
                "classes_per_task": [len(c) for c in groups], "prompts": convention,
                "train_transform": params["train_transform"], "data_root": str(root)}
        return BuiltScenario(tasks, CLASS_INCREMENTAL, info)


# --- the scenarios -------------------------------------------------------------------------------------------

# Where the data and its caches live, not what they hold: runs may differ in these and still resume and
# average together (docs/results-format.md).
DATA_KEYS = ("data_root", "split_file_dir", "cache_preprocessed")

_COMMON = {"data_root": "", "prompts": "single", "train_transform": "test", "cache_preprocessed": True}
_MTIL_COMMON = {**_COMMON, "split_file_dir": ""}


def _mtil(name: str, order: list[str], description: str, fewshot: bool = False) -> Scenario:
    version = f"{name}-{DATA_VERSION}"
    defaults = {**_MTIL_COMMON, "tasks": list(order)}
    if fewshot:
        defaults |= {"shots": 5, "shots_seed": 0}
    return Scenario(name=name, description=description, protocol=TASK_INCREMENTAL, version=version, profile="mtil",
                    defaults=defaults, build=MTILBuild(name, tuple(order), fewshot),
                    default_backbone="ViT-B-16", default_pretrained="openai", data=OnDiskData(tuple(order)),
                    operational=DATA_KEYS)


def _cil(name: str, dataset: str, steps: int, description: str) -> Scenario:
    version = f"{name}-{DATA_VERSION}"
    return Scenario(name=name, description=description, protocol=CLASS_INCREMENTAL, version=version,
                    profile="cil", defaults={**_COMMON, "steps": steps}, build=CILBuild(name, dataset),
                    default_backbone="ViT-B-16", default_pretrained="openai", data=OnDiskData((dataset,)),
                    operational=DATA_KEYS)


MTIL = _mtil("mtil", MTIL_ORDER_I, "MTIL Order I: 11 datasets (Aircraft ... SUN397), task-incremental, full "
             "train/test sets; needs the datasets under --data-root")
MTIL_ORDER2 = _mtil("mtil-order2", MTIL_ORDER_II, "MTIL Order II: the 11 datasets from StanfordCars to CIFAR100; "
                    "needs the datasets under --data-root")
MTIL_FEWSHOT = _mtil("mtil-fewshot", MTIL_ORDER_I, "MTIL Order I with `shots` (5) training images per class "
                     "(seeded selection), full test sets; needs the datasets under --data-root", fewshot=True)
CIL_CIFAR100 = _cil("cil-cifar100", "CIFAR100", 10, "class-incremental CIFAR100 in 10, 20 or 50 steps (--set "
                    "steps=N), ZSCL's class order, joint classifier over seen classes")
CIL_TINYIMAGENET = _cil("cil-tinyimagenet", "TinyImageNet", 10, "class-incremental TinyImageNet: 100 base "
                        "classes, then 5, 10 or 20 steps (--set steps=N), ZSCL's class order")

SCENARIOS = (MTIL, MTIL_ORDER2, MTIL_FEWSHOT, CIL_CIFAR100, CIL_TINYIMAGENET)


def scenario_datasets(scenario: Scenario) -> list[str] | None:
    """The on-disk datasets a scenario reads (None: it needs no data)."""
    data = getattr(scenario, "data", None)
    return None if data is None else list(data.datasets)


__all__ = ["CIL_CIFAR100", "CIL_TINYIMAGENET", "MTIL", "MTIL_FEWSHOT", "MTIL_ORDER2", "OnDiskData", "Pipeline",
           "make_pipeline", "resolve_data_root", "scenario_datasets"]
