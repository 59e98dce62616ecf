"""Class-incremental CIFAR100 and TinyImageNet as run by ZSCL's `cil/` code (PROTOCOL.md G.7).

continuum's `ClassIncremental(..., class_order=order)` relabels every sample to the position of
its class in `order`; text prompt k then names `classes_names[order[k]]`. The loaders here return
datasets already relabelled that way, and tasks are lists of those positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from cl_bench.errors import UserError

from . import _readers as rd
from ._common import ArrayImageDataset, ImageDataset, ImageFileDataset, data_path
from .mtil_datasets import read_samples


def _order(filename: str) -> tuple[int, ...]:
    return tuple(yaml.safe_load(data_path(f"class_orders/{filename}").read_text())["class_order"])


@dataclass(frozen=True)
class CILSpec:
    name: str
    raw_classnames: tuple[str, ...]  # by original label, as continuum's scenario sees them
    class_order: tuple[int, ...]  # class_order[k] = original label of position k
    increments: dict[int, tuple[int, int]]  # steps -> (initial_increment, increment)
    expected_sizes: tuple[int, int]
    expected_layout: str
    base_dir: str
    reader: Callable = field(repr=False, compare=False)

    @property
    def classnames(self) -> tuple[str, ...]:
        """Class names by position in the class order (the label space of `load_cil_split`)."""
        return tuple(self.raw_classnames[c] for c in self.class_order)


CIL_DATASETS: dict[str, CILSpec] = {
    # torchvision's CIFAR100.classes, underscores kept ("aquarium_fish") as continuum passes them on.
    "CIFAR100": CILSpec(
        "CIFAR100", rd.CIFAR100_RAW, _order("cifar100.yaml"), {10: (10, 10), 20: (5, 5), 50: (2, 2)},
        (50000, 10000), "cifar-100-python/{train,test,meta} (python pickles)", "cifar-100-python",
        rd.read_cifar100_raw,
    ),
    # Names: last column of dataset_reqs/tinyimagenet_classes.txt, which lists wnids.txt's order.
    "TinyImageNet": CILSpec(
        "TinyImageNet", tuple(row[-1] for row in rd.TINY_ROWS), _order("tinyimagenet.yaml"),
        {5: (100, 20), 10: (100, 10), 20: (100, 5)}, (100000, 10000),
        "tiny-imagenet-200/{wnids.txt,train/<wnid>/images/*.JPEG,val/val_annotations.txt,val/images/*.JPEG}",
        "tiny-imagenet-200", rd.read_tinyimagenet,
    ),
}  # fmt: skip


def get_cil_spec(name: str) -> CILSpec:
    for key, spec in CIL_DATASETS.items():
        if key.lower() == name.lower():
            return spec
    raise UserError(f"unknown class-incremental dataset {name!r}; choose from {', '.join(CIL_DATASETS)}")


def class_order(name: str) -> tuple[int, ...]:
    return get_cil_spec(name).class_order


def cil_classnames(name: str) -> tuple[str, ...]:
    return get_cil_spec(name).classnames


def cil_task_classes(name: str, steps: int) -> list[list[int]]:
    """Positions (new labels) learnt at each task.

    CIFAR100: steps 10/20/50 = that many tasks of 10/5/2 classes. TinyImageNet: 100 base classes,
    then steps 5/10/20 tasks of +20/+10/+5 classes (steps + 1 tasks in all).
    """
    spec = get_cil_spec(name)
    if steps not in spec.increments:
        raise UserError(f"{spec.name} is run with {sorted(spec.increments)} steps, not {steps}")
    first, increment = spec.increments[steps]
    tasks = [list(range(first))]
    for start in range(first, len(spec.class_order), increment):
        tasks.append(list(range(start, start + increment)))
    return tasks


def load_cil_split(
    name: str, root: str | Path, split: Literal["train", "test"], transform=None
) -> ImageDataset:
    """A split with labels remapped to class-order positions; `classnames[k]` names position k."""
    spec = get_cil_spec(name)
    if split not in ("train", "test"):
        raise UserError(f"split must be 'train' or 'test', not {split!r}")
    images, labels = read_samples(spec.name, root, split, spec.reader, spec.base_dir, spec.expected_layout)
    if isinstance(images, list):
        dataset = ImageFileDataset(images, labels, spec.raw_classnames, transform,
                                   base=Path(root).expanduser() / spec.base_dir)  # fmt: skip
    else:
        dataset = ArrayImageDataset(images, labels, spec.raw_classnames, transform)
    position = [0] * len(spec.class_order)
    for k, original in enumerate(spec.class_order):
        position[original] = k
    return dataset.relabel(position, spec.classnames)


def task_indices(targets: Sequence[int], classes: Sequence[int]) -> list[int]:
    """Indices of the samples whose (remapped) label is in `classes`, e.g. one task's classes for
    training or the union of all seen classes for evaluation."""
    wanted = set(classes)
    return [i for i, t in enumerate(targets) if t in wanted]
