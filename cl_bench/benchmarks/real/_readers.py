"""Readers for the on-disk formats of the MTIL datasets and TinyImageNet.

Each reader parses the files exactly as the torchvision class the reference code uses (or, for
TinyImageNet, continuum's TinyImageNet200) and returns the samples in the same order. Two things
differ on purpose:

* labels are looked up by class name in the packaged class tables, so they always index the
  protocol class-name list, also for a copy holding only some classes (with the full data the
  numbers are identical to torchvision's);
* folder listings are sorted, so the sample order never depends on the filesystem (torchvision's
  SUN397 uses an unsorted `rglob`, see `read_sun397`).

They raise LayoutProblem with a short reason; the caller adds the dataset name and layout.
We parse the files ourselves rather than calling torchvision because CIFAR100 and Flowers102
verify archive MD5 sums (no test copy could pass) and Caltech101 creates folders in the root.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from ._common import LayoutProblem, data_lines

Samples = tuple[list[Path] | np.ndarray, list[int]]

AIRCRAFT_VARIANTS = data_lines("fgvc_aircraft_variants.txt")
CALTECH_FOLDERS = data_lines("caltech101_folders.txt")
CIFAR100_RAW = data_lines("cifar100_fine_label_names.txt")
DTD_CLASSES = data_lines("dtd_classes.txt")
EUROSAT_FOLDERS = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
FOOD_CLASSES = data_lines("food101_classes.txt")
CARS_CLASSES = data_lines("stanford_cars_classes.txt")
SUN397_CLASS_FILE = data_lines("sun397_ClassName.txt")
TINY_ROWS = tuple(line.split("\t") for line in data_lines("tinyimagenet_classes.txt"))

# torchvision.datasets.folder.IMG_EXTENSIONS, which ImageFolder (EuroSAT) filters on.
_IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_CALTECH_IMAGE = re.compile(r"image_\d{4}\.jpg")


def need(path: Path) -> Path:
    if not path.exists():
        raise LayoutProblem(f"missing {path}")
    return path


def text_lines(path: Path) -> list[str]:
    return [line.strip() for line in need(path).read_text().splitlines() if line.strip()]


def _index(names: Sequence[str], what: str):
    table = {name: i for i, name in enumerate(names)}

    def lookup(name: str) -> int:
        if name not in table:
            raise LayoutProblem(f"unknown {what} {name!r}")
        return table[name]

    return lookup


def _same_table(found: Sequence[str], expected: Sequence[str], where: Path) -> None:
    """Class tables whose positions are the labels must match the protocol table exactly."""
    if list(found) != list(expected):
        raise LayoutProblem(f"{where} lists {len(found)} classes that differ from the reference table")


def _sorted_dirs(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(need(path)) if entry.is_dir())


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(need(path), squeeze_me=True)
    except MatReadError as err:
        raise LayoutProblem(f"{path} is not a readable .mat file ({err})") from err


def read_aircraft(root: Path, split: str) -> Samples:
    data = root / "fgvc-aircraft-2013b" / "data"
    _same_table(text_lines(data / "variants.txt"), AIRCRAFT_VARIANTS, data / "variants.txt")
    label = _index(AIRCRAFT_VARIANTS, "variant")
    paths, labels = [], []
    for line in text_lines(data / f"images_variant_{split}.txt"):
        image_id, variant = line.split(" ", 1)
        paths.append(data / "images" / f"{image_id}.jpg")
        labels.append(label(variant))
    return paths, labels


def read_caltech101(root: Path, split: str = "all") -> Samples:
    categories = root / "caltech101" / "101_ObjectCategories"
    label = _index(CALTECH_FOLDERS, "class folder")
    paths, labels = [], []
    for name in _sorted_dirs(categories):
        if name == "BACKGROUND_Google":  # removed by torchvision: not a real class
            continue
        # torchvision numbers the files image_0001..image_N of each folder; sorting the names gives
        # the same order and ignores stray files.
        files = sorted(f for f in os.listdir(categories / name) if _CALTECH_IMAGE.fullmatch(f))
        paths += [categories / name / f for f in files]
        labels += [label(name)] * len(files)
    return paths, labels


def _unpickle(path: Path) -> dict:
    with open(need(path), "rb") as f:
        return pickle.load(f, encoding="latin1")


def read_cifar100_raw(root: Path, split: str) -> Samples:
    """CIFAR-100 python pickles; labels are the fine labels (indices into meta's name table)."""
    base = root / "cifar-100-python"
    _same_table(_unpickle(base / "meta")["fine_label_names"], CIFAR100_RAW, base / "meta")
    entry = _unpickle(base / split)
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = [int(t) for t in entry["fine_labels"]]
    if any(not 0 <= t < len(CIFAR100_RAW) for t in labels):
        raise LayoutProblem(f"{base / split} holds labels outside 0..99")
    return np.ascontiguousarray(images), labels


def read_dtd(root: Path, split: str) -> Samples:
    base = root / "dtd" / "dtd"
    label = _index(DTD_CLASSES, "texture class")
    paths, labels = [], []
    for line in text_lines(base / "labels" / f"{split}1.txt"):  # partition 1, as torchvision's default
        cls, name = line.split("/")
        paths.append(base / "images" / cls / name)
        labels.append(label(cls))
    return paths, labels


def read_eurosat(root: Path, split: str = "all") -> Samples:
    """ImageFolder order: class folders sorted, then a sorted walk of each folder."""
    base = root / "eurosat" / "2750"
    label = _index(EUROSAT_FOLDERS, "class folder")
    paths, labels = [], []
    for cls in _sorted_dirs(base):
        for dirpath, _, files in sorted(os.walk(base / cls, followlinks=True)):
            chosen = [f for f in sorted(files) if f.lower().endswith(_IMG_EXTENSIONS)]
            paths += [Path(dirpath) / f for f in chosen]
            labels += [label(cls)] * len(chosen)
    return paths, labels


def read_flowers102(root: Path, split: str) -> Samples:
    base = root / "flowers-102"
    need(base / "jpg")
    set_ids = _loadmat(base / "setid.mat")
    ids = np.atleast_1d(set_ids[{"train": "trnid", "val": "valid", "test": "tstid"}[split]]).tolist()
    all_labels = np.atleast_1d(_loadmat(base / "imagelabels.mat")["labels"])
    labels = [int(all_labels[i - 1]) - 1 for i in ids]  # .mat labels are 1..102
    if any(not 0 <= t < 102 for t in labels):
        raise LayoutProblem(f"{base / 'imagelabels.mat'} holds labels outside 1..102")
    return [base / "jpg" / f"image_{i:05d}.jpg" for i in ids], labels


def read_food101(root: Path, split: str) -> Samples:
    base = root / "food-101"
    need(base / "images")
    meta = json.loads(need(base / "meta" / f"{split}.json").read_text())
    label = _index(FOOD_CLASSES, "food class")
    paths, labels = [], []
    for cls, rel_paths in meta.items():  # torchvision keeps the JSON's key order
        paths += [base / "images" / Path(*f"{rel}.jpg".split("/")) for rel in rel_paths]
        labels += [label(cls)] * len(rel_paths)
    return paths, labels


def _read_idx(folder: Path, name: str) -> np.ndarray:
    """An IDX file (MNIST), uncompressed as torchvision keeps it, or the downloaded .gz."""
    path = folder / name
    if path.exists():
        data = path.read_bytes()
    elif path.with_name(name + ".gz").exists():
        data = gzip.decompress(path.with_name(name + ".gz").read_bytes())
    else:
        raise LayoutProblem(f"missing {path}")
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise LayoutProblem(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_mnist(root: Path, split: str) -> Samples:
    raw = root / "MNIST" / "raw"
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(raw, f"{prefix}-images-idx3-ubyte")
    labels = _read_idx(raw, f"{prefix}-labels-idx1-ubyte")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or labels.max(initial=0) > 9:
        raise LayoutProblem(f"{raw}: {prefix} image and label files do not match")
    return images.copy(), labels.tolist()


def read_oxford_pet(root: Path, split: str) -> Samples:
    base = root / "oxford-iiit-pet"
    need(base / "images")
    paths, labels = [], []
    for line in text_lines(base / "annotations" / f"{'trainval' if split == 'train' else 'test'}.txt"):
        image_id, label, _species, _breed = line.split()
        paths.append(base / "images" / f"{image_id}.jpg")
        labels.append(int(label) - 1)  # CLASS-ID is 1..37
    if any(not 0 <= t < 37 for t in labels):
        raise LayoutProblem(f"{base / 'annotations'} holds class ids outside 1..37")
    return paths, labels


def read_stanford_cars(root: Path, split: str) -> Samples:
    base = root / "stanford_cars"
    devkit = base / "devkit"
    meta = _loadmat(devkit / "cars_meta.mat")["class_names"]
    _same_table([str(n) for n in np.atleast_1d(meta)], CARS_CLASSES, devkit / "cars_meta.mat")
    if split == "train":
        annotations, images = devkit / "cars_train_annos.mat", base / "cars_train"
    else:
        annotations, images = base / "cars_test_annos_withlabels.mat", base / "cars_test"
    need(images)
    records = np.atleast_1d(_loadmat(annotations)["annotations"])
    labels = [int(r["class"]) - 1 for r in records]  # 1..196 in the .mat files
    if any(not 0 <= t < len(CARS_CLASSES) for t in labels):
        raise LayoutProblem(f"{annotations} holds classes outside 1..196")
    return [images / str(r["fname"]) for r in records], labels


def read_sun397(root: Path, split: str = "all") -> Samples:
    """All SUN397 images ("sun_*.jpg" anywhere below SUN397/), in sorted relative-path order.

    torchvision keeps `Path.rglob` order, which depends on the filesystem; we sort instead.
    The class of SUN397/a/apartment_building/outdoor/sun_x.jpg is "apartment_building/outdoor",
    matched against ClassName.txt lines without their "/a/" prefix.
    """
    base = root / "SUN397"
    _same_table(text_lines(base / "ClassName.txt"), SUN397_CLASS_FILE, base / "ClassName.txt")
    label = _index([line[3:] for line in SUN397_CLASS_FILE], "scene class")
    found = []
    for dirpath, _, files in os.walk(base):
        rel_dir = Path(dirpath).relative_to(base)
        found += [(rel_dir / f).as_posix() for f in files if fnmatchcase(f, "sun_*.jpg")]
    found.sort()
    labels = [label("/".join(rel.split("/")[1:-1])) for rel in found]
    return [base / rel for rel in found], labels


def read_tinyimagenet(root: Path, split: str) -> Samples:
    """continuum's TinyImageNet200: label = line of the wnid in wnids.txt.

    Train images are listed from train/<wnid>/images (sorted; continuum reads the same files from
    <wnid>_boxes.txt), val images follow val/val_annotations.txt.
    """
    base = root / "tiny-imagenet-200"
    wnids = text_lines(base / "wnids.txt")
    _same_table(wnids, [row[1] for row in TINY_ROWS], base / "wnids.txt")
    label = _index(wnids, "wnid")
    paths, labels = [], []
    if split == "train":
        for wnid in wnids:
            folder = need(base / "train" / wnid / "images")
            files = sorted(f for f in os.listdir(folder) if f.endswith(".JPEG"))
            paths += [folder / f for f in files]
            labels += [label(wnid)] * len(files)
    else:
        need(base / "val" / "images")
        for line in text_lines(base / "val" / "val_annotations.txt"):
            image, wnid = line.split("\t")[:2]
            paths.append(base / "val" / "images" / image)
            labels.append(label(wnid))
    return paths, labels
