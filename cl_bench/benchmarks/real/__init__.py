"""Real datasets: the 11 MTIL datasets and class-incremental CIFAR100/TinyImageNet, read from the
on-disk layouts the reference code (torchvision, continuum) expects under one data root."""

from ._common import ArrayImageDataset, DataLayoutError, DataMissingError, ImageDataset, ImageFileDataset
from .check import CheckRow, check_data
from .cil_datasets import (
    CIL_DATASETS,
    CILSpec,
    cil_classnames,
    cil_task_classes,
    class_order,
    get_cil_spec,
    load_cil_split,
    task_indices,
)
from .mtil_datasets import (
    MTIL_DATASETS,
    MTIL_ORDER_I,
    MTIL_ORDER_II,
    DatasetSpec,
    get_spec,
    load_mtil_full,
    load_mtil_split,
    load_mtil_splits,
    load_split_file,
    save_split_file,
    split_indices,
)
from .splits import few_shot_indices, reference_split_indices

__all__ = [
    "ArrayImageDataset", "CIL_DATASETS", "CILSpec", "CheckRow", "DataLayoutError", "DataMissingError",
    "DatasetSpec", "ImageDataset", "ImageFileDataset", "MTIL_DATASETS", "MTIL_ORDER_I", "MTIL_ORDER_II",
    "check_data", "cil_classnames", "cil_task_classes", "class_order", "few_shot_indices", "get_cil_spec",
    "get_spec", "load_cil_split", "load_mtil_full", "load_mtil_split", "load_mtil_splits", "load_split_file",
    "reference_split_indices", "save_split_file", "split_indices", "task_indices",
]  # fmt: skip
