"""Shared pieces of the real-dataset layer: error types, the two dataset classes, packaged data files."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from cl_bench.errors import UserError


class DataMissingError(UserError):
    """The dataset's top folder is not under the data root."""


class DataLayoutError(UserError):
    """The dataset's folder exists but its files are not laid out as expected."""


class LayoutProblem(Exception):
    """Raised by the format readers; the loader turns it into a one-line DataLayoutError."""


@cache
def data_lines(filename: str) -> tuple[str, ...]:
    """Lines of a file shipped in benchmarks/real/data (protocol data: class names, orders).

    Only the newline is stripped: some reference names carry significant spaces
    (Caltech101's "head of a  crocodile").
    """
    text = resources.files(__package__).joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(text.splitlines())


def data_path(filename: str) -> Path:
    return Path(str(resources.files(__package__).joinpath("data", filename)))


class ImageDataset(Dataset):
    """Base of the datasets returned by the loaders.

    `targets` is a plain list of ints available without decoding any image; `classnames[t]` names
    label t. Items are (transform(RGB PIL image), int label). Subclasses store one entry per sample
    in `items` and implement `_image(item)`.
    """

    def __init__(self, items, targets: Sequence[int], classnames: Sequence[str], transform=None):
        if len(items) != len(targets):
            raise ValueError(f"{len(items)} images but {len(targets)} labels")
        self.items = items
        self.targets = [int(t) for t in targets]
        self.classnames = tuple(classnames)
        self.transform: Callable | None = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = self._image(self.items[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def _image(self, item) -> Image.Image:
        raise NotImplementedError

    def _take(self, indices: list[int]):
        return [self.items[i] for i in indices]

    def subset(self, indices: Sequence[int]) -> ImageDataset:
        """A copy holding only `indices`, in that order (keeps transform and class names)."""
        idx = [int(i) for i in indices]
        new = copy.copy(self)
        new.items = self._take(idx)
        new.targets = [self.targets[i] for i in idx]
        return new

    def relabel(self, mapping: Sequence[int], classnames: Sequence[str]) -> ImageDataset:
        """A copy whose label t becomes mapping[t], named by `classnames`."""
        new = copy.copy(self)
        new.targets = [int(mapping[t]) for t in self.targets]
        new.classnames = tuple(classnames)
        return new


class ImageFileDataset(ImageDataset):
    """Images stored as files; `items` are absolute paths, `base` the dataset folder."""

    def __init__(self, paths, targets, classnames, transform=None, base: Path | None = None):
        super().__init__(list(paths), targets, classnames, transform)
        self.base = base

    @property
    def paths(self) -> list[Path]:
        return self.items

    def relpaths(self) -> list[str]:
        """Sample paths relative to `base`, POSIX style (the currency of split files)."""
        return [p.relative_to(self.base).as_posix() for p in self.items]

    def _image(self, path: Path) -> Image.Image:
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:  # truncated, garbage or unsupported file
            raise UserError(f"unreadable image {path} ({e}); replace it from the dataset's archive "
                            "(`cl-bench data check --deep` lists every such file)") from None


class ArrayImageDataset(ImageDataset):
    """Images held in one uint8 array: N×H×W×3 (CIFAR) or N×H×W greyscale (MNIST)."""

    def _take(self, indices):
        return self.items[np.asarray(indices, dtype=np.int64)]

    def _image(self, array: np.ndarray) -> Image.Image:
        # The reference pipelines convert to RGB before the CLIP transform, MNIST included.
        return Image.fromarray(array).convert("RGB")
