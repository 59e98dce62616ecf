"""Split index files shipped with cl-bench for the datasets split 80/20 by file list (Caltech101, EuroSAT,
SUN397): the exact relative paths of each split, so every machine runs the same split and `data check` can
say when the files on disk differ from them (docs/data-fetch.md). They use the split-file format of
`save_split_file`, so ``--set split_file_dir=<index folder>`` also runs from them directly."""

from __future__ import annotations

import json
from pathlib import Path

from cl_bench.errors import UserError

from ._common import data_path
from .mtil_datasets import get_spec, save_split_file


def shipped_index_dir() -> Path:
    return data_path("split_index")


def index_path(name: str, index_dir: str | Path | None = None) -> Path:
    return Path(index_dir or shipped_index_dir()) / f"{get_spec(name).name}.json"


def write_index(name: str, root: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the index of ``name`` from a complete copy under ``root`` (default: into the package)."""
    spec = get_spec(name)
    if not spec.random_split:
        raise UserError(f"{spec.name} has official splits and needs no index; index Caltech101, EuroSAT or SUN397")
    return save_split_file(spec.name, root, index_path(spec.name, out_dir))


def index_mismatch(name: str, train: list[str], test: list[str], index_dir: str | Path | None = None) -> str | None:
    """None when there is no index for ``name`` or the split on disk (relative paths) equals it, else why not."""
    path = index_path(name, index_dir)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        indexed_train, indexed_test = set(record["train"]), set(record["test"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"split index {path} is unreadable ({err}); reinstall cl-bench") from None
    indexed, on_disk = indexed_train | indexed_test, set(train) | set(test)
    absent, extra = sorted(indexed - on_disk), sorted(on_disk - indexed)
    if absent or extra:
        parts = [f"{len(absent)} indexed files absent (first: {absent[0]})" if absent else "",
                 f"{len(extra)} files not in the index (first: {extra[0]})" if extra else ""]
        return (f"files on disk differ from the split index {path}: {', '.join(p for p in parts if p)}; "
                "re-fetch the dataset (`cl-bench data fetch`) or restore the missing files")
    if set(train) != indexed_train:
        return (f"same files as the split index {path} but a different train/test split (torch.randperm changed?); "
                f"run with --set split_file_dir={path.parent} to use the indexed split")
    return None
