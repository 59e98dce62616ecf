"""Turn downloaded files into the on-disk layout `data check` expects: safe archive extraction, plain copies,
and converters for mirrors that ship another format (parquet -> the original files)."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._readers import CIFAR100_RAW
from .sources import Convert, Place, Unpack


class InstallError(Exception):
    """The downloaded files do not unpack into the expected layout; try the next source."""


def run_steps(steps, files: dict[str, Path], tree: Path) -> None:
    """Apply a source's steps; ``files`` maps downloaded file names (or Hub file paths) to local paths."""
    for step in steps:
        if isinstance(step, Unpack):
            src = tree / step.src[5:] if step.src.startswith("tree:") else files.get(step.src)
            if src is None or not src.is_file():
                raise InstallError(f"{step.src} is not in the download")
            extract(src, tree / step.into)
        elif isinstance(step, Place):
            dest = tree / step.dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[step.src], dest)
        elif isinstance(step, Convert):
            CONVERTERS[step.name](files, tree)
        else:
            raise TypeError(f"unknown install step {step!r}")


def extract(archive: Path, dest: Path) -> None:
    """Unpack a .zip or a (compressed) .tar, refusing members that would land outside ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                root = dest.resolve()
                for member in z.namelist():
                    if not (dest / member).resolve().is_relative_to(root):
                        raise InstallError(f"{archive.name} holds a path outside its folder: {member}")
                z.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")  # "data" refuses absolute paths, links out, devices
        else:
            raise InstallError(f"{archive.name} is neither a zip nor a tar archive")
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise InstallError(f"{archive.name} does not unpack ({' '.join(str(err).split())})") from None


# --- parquet mirrors ---------------------------------------------------------------------------------------


def _parquet_columns(paths: list[Path], image: str, label: str) -> tuple[list[bytes], list[int]]:
    import pyarrow.parquet as pq

    images, labels = [], []
    for path in sorted(paths):
        table = pq.read_table(path, columns=[image, label]).to_pydict()
        if not table[image]:
            continue
        images += [cell["bytes"] if isinstance(cell, dict) else cell for cell in table[image]]
        labels += [int(v) for v in table[label]]
    return images, labels


def _decode(blobs: list[bytes], mode: str) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert(mode), dtype=np.uint8) for b in blobs])


def _split_files(files: dict[str, Path], split: str) -> list[Path]:
    found = [p for name, p in files.items() if Path(name).name.startswith(f"{split}-") and name.endswith(".parquet")]
    if not found:
        raise InstallError(f"no {split} parquet shard in the download")
    return found


def cifar100_parquet(files: dict[str, Path], tree: Path) -> None:
    """uoft-cs/cifar100 (columns img {bytes: PNG}, fine_label, coarse_label) -> cifar-100-python pickles.
    Its fine_label ClassLabel is assumed to be in the original (alphabetical) order, which `data check`'s
    class table cannot detect: docs/data-fetch.md marks this source unverified."""
    import pyarrow.parquet as pq

    base = tree / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        paths = _split_files(files, split)
        images, fine = _parquet_columns(paths, "img", "fine_label")
        coarse = [int(v) for p in sorted(paths) for v in pq.read_table(p, columns=["coarse_label"])["coarse_label"]
                  .to_pylist()]
        data = _decode(images, "RGB").transpose(0, 3, 1, 2).reshape(len(images), -1)  # CHW rows, as the pickles
        entry = {"filenames": [f"{k}.png" for k in range(len(images))], "fine_labels": fine,
                 "coarse_labels": coarse, "data": data}
        (base / split).write_bytes(pickle.dumps(entry))
    meta = {"fine_label_names": list(CIFAR100_RAW), "coarse_label_names": []}
    (base / "meta").write_bytes(pickle.dumps(meta))


def mnist_parquet(files: dict[str, Path], tree: Path) -> None:
    """ylecun/mnist (columns image {bytes: PNG}, label) -> MNIST/raw/*-ubyte.gz IDX files."""
    raw = tree / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = _parquet_columns(_split_files(files, split), "image", "label")
        for name, array in ((f"{prefix}-images-idx3-ubyte", _decode(images, "L")),
                            (f"{prefix}-labels-idx1-ubyte", np.asarray(labels, dtype=np.uint8))):
            header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (raw / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes()))


CONVERTERS: dict[str, Callable[[dict[str, Path], Path], None]] = {
    "cifar100_parquet": cifar100_parquet,
    "mnist_parquet": mnist_parquet,
}
