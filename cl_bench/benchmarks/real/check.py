"""`check_data`: which datasets are under a data root, laid out as the loaders expect, and complete."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cl_bench.errors import UserError

from ._common import DataLayoutError, DataMissingError, ImageFileDataset
from .cil_datasets import CIL_DATASETS, get_cil_spec, load_cil_split
from .mtil_datasets import MTIL_DATASETS, MTIL_ORDER_I, get_spec, load_mtil_splits
from .split_index import index_mismatch

Status = Literal["found", "missing", "wrong layout"]


@dataclass(frozen=True)
class CheckRow:
    dataset: str
    status: Status
    path: str  # the folder the dataset is expected in
    layout: str  # expected layout below the root
    train: int | None  # samples found (None unless status is "found")
    test: int | None
    expected_train: int
    expected_test: int
    message: str = ""  # why it is missing or wrong, or which counts differ

    @property
    def sizes_match(self) -> bool:
        return (self.train, self.test) == (self.expected_train, self.expected_test)


def _resolve(name: str):
    """MTIL spec if the name is an MTIL dataset (CIFAR100 is both), else the CIL spec."""
    if name.lower() in {n.lower() for n in MTIL_DATASETS}:
        return get_spec(name), False
    if name.lower() in {n.lower() for n in CIL_DATASETS}:
        return get_cil_spec(name), True
    known = ", ".join(MTIL_ORDER_I + [n for n in CIL_DATASETS if n not in MTIL_DATASETS])
    raise UserError(f"unknown dataset {name!r}; choose from {known}")


def _splits(name: str, root: Path, is_cil: bool):
    if is_cil:
        return load_cil_split(name, root, "train"), load_cil_split(name, root, "test")
    return load_mtil_splits(name, root)


def _missing_files(datasets) -> list[Path]:
    return [p for ds in datasets if isinstance(ds, ImageFileDataset) for p in ds.paths if not p.is_file()]


def _unreadable(datasets) -> list[Path]:
    """Image files that do not decode (truncated, garbage): every image is opened and fully loaded."""
    from PIL import Image

    bad = []
    for ds in datasets:
        if isinstance(ds, ImageFileDataset):
            for p in ds.paths:
                try:
                    with Image.open(p) as im:
                        im.load()
                except (OSError, SyntaxError, ValueError):
                    bad.append(p)
    return bad


def check_data(dataset_names: Iterable[str] | None, root: str | Path, deep: bool = False,
               index_dir: str | Path | None = None) -> list[CheckRow]:
    """One row per dataset (default: the 11 MTIL datasets in Order I, then TinyImageNet).

    "missing": the dataset's folder is absent; "wrong layout": the folder exists but its index
    files cannot be read as expected or listed images are absent; "found": both splits load
    (their sizes may still differ from the protocol's, see `CheckRow.sizes_match`). ``deep`` also decodes
    every image and reports a dataset with unreadable files as "wrong layout", naming them. A randomly split
    dataset whose files differ from its split index (shipped, or in ``index_dir``) is also "wrong layout".
    """
    root = Path(root).expanduser()
    if dataset_names is None:
        dataset_names = MTIL_ORDER_I + [n for n in CIL_DATASETS if n not in MTIL_DATASETS]
    rows = []
    for name in dataset_names:
        spec, is_cil = _resolve(name)
        path, expected = str(root / spec.base_dir), spec.expected_sizes
        row = dict(dataset=spec.name, path=path, layout=spec.expected_layout, train=None, test=None,
                   expected_train=expected[0], expected_test=expected[1])  # fmt: skip
        try:
            train, test = _splits(spec.name, root, is_cil)
        except DataMissingError as err:
            rows.append(CheckRow(status="missing", message=str(err), **row))
            continue
        except DataLayoutError as err:
            rows.append(CheckRow(status="wrong layout", message=str(err), **row))
            continue
        absent = _missing_files((train, test))
        if absent:
            message = f"{len(absent)} listed images are missing (first: {absent[0]})"
            rows.append(CheckRow(status="wrong layout", message=message, **row))
            continue
        mismatch = None if is_cil or not spec.random_split else index_mismatch(
            spec.name, train.relpaths(), test.relpaths(), index_dir)
        if mismatch:
            rows.append(CheckRow(status="wrong layout", message=mismatch, **row))
            continue
        bad = _unreadable((train, test)) if deep else []
        if bad:
            more = " …" if len(bad) > 5 else ""
            message = f"{len(bad)} images do not decode: {', '.join(map(str, bad[:5]))}{more}"
            rows.append(CheckRow(status="wrong layout", message=message, **row))
            continue
        row.update(train=len(train), test=len(test))
        message = ""
        if (len(train), len(test)) != expected:
            found = f"{len(train)}/{len(test)}"
            message = f"found {found} train/test samples, expected {expected[0]}/{expected[1]}"
        rows.append(CheckRow(status="found", message=message, **row))
    return rows
