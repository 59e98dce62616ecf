"""The preprocessed-pixel cache of the real scenarios.

Datasets stored as image files are decoded, resized and centre-cropped once (the deterministic PIL part of
the backbone's transform, ``Pipeline.prefix``) and the uint8 pixels kept in a ``.npy`` file under
``$CL_BENCH_CACHE/preprocessed``, memory-mapped when read. The rest of the transform (``Pipeline.tail``:
ToTensor + Normalize) runs per item, so items are bit-identical to decoding the image file. A dataset can
instead hand out the raw uint8 pixels (``CachedImageDataset.pixels``) for normalising whole batches on the
device with ``Backbone.normalize`` (same arithmetic, so on the CPU the same numbers).

Each array has a ``.sum`` file beside it (CRC-32 of the whole file): a damaged array is reported and rebuilt,
never used. Files are written under a temporary name and renamed, so a crash or a concurrent run never
leaves a partial file. At 224 px an image takes 147 KiB: the full MTIL image-file datasets take about 40 GiB,
TinyImageNet about 16 GiB. Delete the folder to reclaim the space.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cl_bench.backbone import cache_dir
from cl_bench.stale import remove_stale_temporaries

from .real import ImageDataset, ImageFileDataset

CACHE_FORMAT = "cl-bench-preprocessed/2"  # 2: a .sum checksum file beside each array


@dataclass(frozen=True)
class Pipeline:
    """The image transforms of a run, split for caching: ``test = prefix + tail`` where ``prefix`` is the
    deterministic PIL part (resize, crop, RGB) and ``tail`` starts at ToTensor."""

    test: Callable
    train: Callable
    train_is_test: bool
    prefix: Callable | None  # None: the transform has no ToTensor step to split at, so nothing is cached
    tail: Callable | None
    identity: str  # the prefix's description, part of the cache key
    size: int


class CachedImageDataset(Dataset):
    """Items of an image-file dataset whose deterministic PIL transform was applied once and stored as
    (N, S, S, 3) uint8 in a .npy file; ``tail`` (ToTensor, Normalize) runs per item, or with no tail items are
    the uint8 pixels as a tensor. Picklable for DataLoader workers (each opens its own memory map)."""

    def __init__(self, path: Path, targets: Sequence[int], classnames: Sequence[str], tail: Callable | None):
        self.path = Path(path)
        self.targets = [int(t) for t in targets]
        self.classnames = tuple(classnames)
        self.tail = tail
        self._array = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        pixels = np.array(self._array[index])
        return (self.tail(pixels) if self.tail is not None else torch.from_numpy(pixels)), self.targets[index]

    def pixels(self) -> CachedImageDataset:
        """The same items as uint8 (S, S, 3) tensors, for batches normalised on the device."""
        return CachedImageDataset(self.path, self.targets, self.classnames, None)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_array"] = None
        return state


class _PrefixArrays(Dataset):
    def __init__(self, dataset: ImageDataset, prefix):
        self.dataset = copy.copy(dataset)
        self.dataset.transform = prefix

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.dataset[index][0], dtype=np.uint8)


def _stack(arrays) -> np.ndarray:
    return np.stack(arrays)


def preprocessed_dir() -> Path:
    return cache_dir() / "preprocessed"


def cache_path(dataset: ImageFileDataset, tag: str, version: str, pipeline: Pipeline) -> Path:
    """Keyed by the data-layer version, the dataset and split (``tag``), the exact list of image files, the
    transform's identity and the versions of the libraries that compute it."""
    import PIL
    import torchvision

    blob = json.dumps([CACHE_FORMAT, version, tag, pipeline.identity, pipeline.size, PIL.__version__,
                       torchvision.__version__, [str(p) for p in dataset.paths]])
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    return preprocessed_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}-{key}.npy"


def _checksum(path: Path) -> str:
    """CRC-32 of the whole file (zlib runs at GB/s, so a check at every open stays cheap next to decoding)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


def _sum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sum")


def _valid(path: Path, shape: tuple[int, ...]) -> bool:
    """The cached file exists, has the expected shape, and its content matches the checksum written with it."""
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
        ok = array.shape == shape and array.dtype == np.uint8
        del array
        ok = ok and _sum_path(path).read_text().strip() == _checksum(path)
    except (OSError, ValueError):
        ok = False
    if not ok:
        print(f"warning: preprocessed cache {path} is damaged or incomplete (shape or checksum mismatch); "
              "rebuilding it", file=sys.stderr)
    return ok


def _fill(dataset: ImageFileDataset, pipeline: Pipeline, path: Path, num_workers: int, tag: str) -> bool:
    """Preprocess every image into ``path``. False (the run then decodes images as usual) if the transform's
    output is not S×S RGB or the cache folder cannot hold the file."""
    n, s = len(dataset), pipeline.size
    arrays = _PrefixArrays(dataset, pipeline.prefix)
    if arrays[0].shape != (s, s, 3):
        return False
    workers = max(num_workers, min(8, os.cpu_count() or 1) if n >= 2000 else 0)
    need = n * s * s * 3
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
    except OSError as err:
        print(f"warning: not caching preprocessed {tag}: cannot create {path.parent} ({err})", file=sys.stderr)
        return False
    if free < need + 2**28:  # a full disk would only show as a crash (SIGBUS) while writing the memory map
        print(f"warning: not caching preprocessed {tag}: {need / 2**30:.1f} GiB needed in {path.parent}, "
              f"{free / 2**30:.1f} GiB free (point CL_BENCH_CACHE at a larger disk to cache it)", file=sys.stderr)
        return False
    if n >= 2000:
        print(f"caching preprocessed {tag} ({n:,} images, {need / 2**30:.1f} GiB) in {path.parent} (once)",
              file=sys.stderr)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
        i = 0
        for batch in DataLoader(arrays, batch_size=32, num_workers=workers, collate_fn=_stack):
            out[i:i + len(batch)] = batch
            i += len(batch)
        out.flush()
        del out
        _sum_path(tmp).write_text(_checksum(tmp) + "\n")
        os.replace(_sum_path(tmp), _sum_path(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _sum_path(tmp).unlink(missing_ok=True)
    return True


def prepare(dataset: ImageDataset, transform, *, deterministic: bool, pipeline: Pipeline, cache: bool,
            tag: str, version: str, num_workers: int = 0) -> Dataset:
    """The dataset as the run sees it: (transform(image), label) items, from the cache where possible (image
    files under a deterministic transform that splits at ToTensor)."""
    if (cache and deterministic and pipeline.prefix is not None and isinstance(dataset, ImageFileDataset)
            and len(dataset) > 0):
        path = cache_path(dataset, tag, version, pipeline)
        remove_stale_temporaries(path)
        s = pipeline.size
        if _valid(path, (len(dataset), s, s, 3)) or _fill(dataset, pipeline, path, num_workers, tag):
            return CachedImageDataset(path, dataset.targets, dataset.classnames, pipeline.tail)
    out = copy.copy(dataset)
    out.transform = transform
    return out
