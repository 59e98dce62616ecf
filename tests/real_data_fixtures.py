"""Miniature copies of the real datasets, written in their real on-disk formats, for tests.

Every generator writes one dataset under `root` the way the official archive unpacks (the layout
torchvision / continuum read) and returns what a correct loader must produce:
{split: [(label, rgb), ...]} in loader order, where label indexes the protocol class-name list and
rgb is the colour the image was filled with. Every image gets its own colour, so comparing colours
checks both the labels and the sample order. Images are 8×8 JPEGs (arrays for CIFAR/MNIST).
Miniatures hold only a few classes where the format allows it; class tables whose positions are
labels (variants.txt, CIFAR meta, cars_meta.mat, ClassName.txt, wnids.txt) are written in full.
"""

from __future__ import annotations

import gzip
import json
import pickle
import random
from pathlib import Path

import numpy as np
from PIL import Image

from cl_bench.benchmarks.real import _readers as rd

Expected = dict[str, list[tuple[int, tuple[int, int, int]]]]
SIZE = 8


class Palette:
    """Hands out distinct colours 8 levels apart (JPEG keeps solid colours within ±3)."""

    def __init__(self):
        self.k = 0

    def next(self) -> tuple[int, int, int]:
        k, self.k = self.k, self.k + 1
        return 16 + 8 * (k % 28), 16 + 8 * (k // 28 % 28), 16 + 8 * (k // 784 % 28)


def write_jpeg(path: Path, rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (SIZE, SIZE), tuple(rgb)).save(path, "JPEG", quality=100, subsampling=0)


def _write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _sorted_by_path(records) -> list:
    return [(label, rgb) for _, label, rgb in sorted(records)]


def make_aircraft(root: Path, palette: Palette, variants=(0, 41, 73, 99), per_split=2) -> Expected:
    data = root / "fgvc-aircraft-2013b" / "data"
    _write_lines(data / "variants.txt", rd.AIRCRAFT_VARIANTS)
    expected, image_id = {}, 1000000
    for split in ("train", "val", "test"):
        lines, expected[split] = [], []
        for _ in range(per_split):
            for v in reversed(variants):  # list order differs from label order
                rgb = palette.next()
                write_jpeg(data / "images" / f"{image_id}.jpg", rgb)
                lines.append(f"{image_id} {rd.AIRCRAFT_VARIANTS[v]}")
                expected[split].append((v, rgb))
                image_id += 1
        _write_lines(data / f"images_variant_{split}.txt", lines)
    return expected


def make_caltech101(root: Path, palette: Palette, folders=(0, 3, 29, 100), per_class=12) -> Expected:
    base = root / "caltech101" / "101_ObjectCategories"
    for i in range(1, 3):  # torchvision drops this folder
        write_jpeg(base / "BACKGROUND_Google" / f"image_{i:04d}.jpg", palette.next())
    records = []
    for f in folders:
        name = rd.CALTECH_FOLDERS[f]
        for i in range(1, per_class + 1):
            rgb = palette.next()
            write_jpeg(base / name / f"image_{i:04d}.jpg", rgb)
            records.append((f"{name}/image_{i:04d}.jpg", f, rgb))
    return {"all": _sorted_by_path(records)}


def make_cifar100(root: Path, per_class=(2, 1), seed=0) -> Expected:
    """All 100 classes; red = label, green = rank, blue grows down the rows (catches H/W mix-ups)."""
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    meta = {"fine_label_names": list(rd.CIFAR100_RAW), "coarse_label_names": [f"c{i}" for i in range(20)]}
    (base / "meta").write_bytes(pickle.dumps(meta))
    rng, expected = random.Random(seed), {}
    for split, n in zip(("train", "test"), per_class):
        labels = [c for c in range(100) for _ in range(n)]
        rng.shuffle(labels)
        rgb = [(label, k % 256, 7) for k, label in enumerate(labels)]
        rows = np.repeat(7 + 8 * np.arange(32, dtype=np.uint8)[:, None], 32, 1)
        planes = np.array([[np.full((32, 32), r), np.full((32, 32), g), rows] for r, g, _ in rgb], np.uint8)
        entry = {"filenames": [f"{k}.png" for k in range(len(labels))], "fine_labels": labels,
                 "coarse_labels": [label // 5 for label in labels], "data": planes.reshape(len(labels), -1)}
        (base / split).write_bytes(pickle.dumps(entry))
        expected[split] = list(zip(labels, rgb))
    return expected


def make_dtd(root: Path, palette: Palette, classes=(0, 30, 46), per_split=2) -> Expected:
    base = root / "dtd" / "dtd"
    expected = {}
    for split in ("train", "val", "test"):
        lines, expected[split] = [], []
        for c in classes:
            name = rd.DTD_CLASSES[c]
            for i in range(per_split):
                rgb = palette.next()
                file = f"{name}_{split}_{i:04d}.jpg"
                write_jpeg(base / "images" / name / file, rgb)
                lines.append(f"{name}/{file}")
                expected[split].append((c, rgb))
        _write_lines(base / "labels" / f"{split}1.txt", lines)
    return expected


def make_eurosat(root: Path, palette: Palette, folders=(0, 3, 9), per_class=11) -> Expected:
    base = root / "eurosat" / "2750"
    records = []
    for f in folders:
        name = rd.EUROSAT_FOLDERS[f]
        for i in range(1, per_class + 1):  # "_10" sorts before "_2", as in the real folder
            rgb = palette.next()
            write_jpeg(base / name / f"{name}_{i}.jpg", rgb)
            records.append((f"{name}/{name}_{i}.jpg", f, rgb))
    _write_lines(base / rd.EUROSAT_FOLDERS[folders[0]] / "notes.txt", ["not an image: ImageFolder skips it"])
    return {"all": _sorted_by_path(records)}


def make_flowers102(root: Path, palette: Palette, classes=(0, 59, 101)) -> Expected:
    from scipy.io import savemat

    base = root / "flowers-102"
    ids = {"trnid": [], "valid": [], "tstid": []}
    labels, expected = [], {"train": [], "test": []}
    image_id = 1
    for key, n in (("trnid", 2), ("valid", 1), ("tstid", 3)):
        for c in classes:
            for _ in range(n):
                rgb = palette.next()
                write_jpeg(base / "jpg" / f"image_{image_id:05d}.jpg", rgb)
                ids[key].append(image_id)
                labels.append(c + 1)
                if key != "valid":
                    expected["train" if key == "trnid" else "test"].append((c, rgb))
                image_id += 1
    savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in ids.items()})
    return expected


def make_food101(root: Path, palette: Palette, classes=(55, 0, 100), per_split=(3, 2)) -> Expected:
    base = root / "food-101"
    expected, image_id = {}, 100
    for split, n in zip(("train", "test"), per_split):
        meta, expected[split] = {}, []
        for c in classes:  # JSON key order (not sorted) is the sample order
            name = rd.FOOD_CLASSES[c]
            meta[name] = []
            for _ in range(n):
                rgb = palette.next()
                write_jpeg(base / "images" / name / f"{image_id}.jpg", rgb)
                meta[name].append(f"{name}/{image_id}")
                expected[split].append((c, rgb))
                image_id += 1
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))
    _write_lines(base / "meta" / "classes.txt", rd.FOOD_CLASSES)
    return expected


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist(root: Path, sizes=(30, 20), gz=False) -> Expected:
    """28×28 digits whose top row's grey level encodes the sample (brighter down the rows);
    labels cycle with a stride."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    expected = {}
    for split, prefix, n in (("train", "train", sizes[0]), ("test", "t10k", sizes[1])):
        labels = np.array([(3 * k + 1) % 10 for k in range(n)], dtype=np.uint8)
        grey = np.array([10 + 4 * k for k in range(n)], dtype=np.uint8)
        images = (grey[:, None, None] + 4 * np.arange(28, dtype=np.uint8)[None, :, None]).repeat(28, 2)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = _idx_bytes(array)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
        expected[split] = [(int(t), (int(g),) * 3) for t, g in zip(labels, grey)]
    return expected


# label: (breed as in the image ids, species 1 = cat / 2 = dog)
PET_IDS = {0: ("Abyssinian", 1), 1: ("american_bulldog", 2), 11: ("Egyptian_Mau", 1),
           36: ("yorkshire_terrier", 2)}  # fmt: skip


def make_oxford_pet(root: Path, palette: Palette, classes=(0, 1, 11, 36), per_split=2) -> Expected:
    base = root / "oxford-iiit-pet"
    expected, number = {}, 1
    for split, file in (("train", "trainval"), ("test", "test")):
        lines, expected[split] = [], []
        for c in classes:
            breed, species = PET_IDS[c]
            for _ in range(per_split):
                rgb = palette.next()
                write_jpeg(base / "images" / f"{breed}_{number}.jpg", rgb)
                lines.append(f"{breed}_{number} {c + 1} {species} {1 + c % 12}")
                expected[split].append((c, rgb))
                number += 1
        _write_lines(base / "annotations" / f"{file}.txt", lines)
    return expected


def _cars_annotations(records) -> np.ndarray:
    fields = [(f, "O") for f in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")]
    return np.array([(1, 1, SIZE, SIZE, c + 1, fname) for c, fname in records], dtype=fields).reshape(1, -1)


def make_stanford_cars(root: Path, palette: Palette, classes=(0, 173, 195), per_split=2) -> Expected:
    from scipy.io import savemat

    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    names = np.array([list(rd.CARS_CLASSES)], dtype=object)  # a 1×196 MATLAB cell array
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    expected = {}
    for split, folder, mat in (("train", "cars_train", base / "devkit" / "cars_train_annos.mat"),
                               ("test", "cars_test", base / "cars_test_annos_withlabels.mat")):  # fmt: skip
        records, expected[split] = [], []
        for _ in range(per_split):
            for c in classes:
                rgb = palette.next()
                fname = f"{len(records) + 1:05d}.jpg"
                write_jpeg(base / folder / fname, rgb)
                records.append((c, fname))
                expected[split].append((c, rgb))
        savemat(mat, {"annotations": _cars_annotations(records)})
    return expected


SUN_CLASSES = (0, 8, 206, 207, 396)  # abbey, apartment_building/outdoor, jail/indoor, jail_cell, youth_hostel


def make_sun397(root: Path, palette: Palette, classes=SUN_CLASSES, per_class=4, seed=1) -> Expected:
    base = root / "SUN397"
    _write_lines(base / "ClassName.txt", rd.SUN397_CLASS_FILE)
    _write_lines(base / "README.txt", ["not an image"])
    rng, records = random.Random(seed), []
    for c in classes:
        folder = rd.SUN397_CLASS_FILE[c].lstrip("/")
        for _ in range(per_class):
            name = "sun_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(16)) + ".jpg"
            rgb = palette.next()
            write_jpeg(base / folder / name, rgb)
            records.append((f"{folder}/{name}", c, rgb))
        write_jpeg(base / folder / "thumbnail.jpg", palette.next())  # not sun_*.jpg: ignored
    return {"all": _sorted_by_path(records)}


def make_tinyimagenet(root: Path, palette: Palette, per_class=(1, 1), seed=2) -> Expected:
    """All 200 classes (the class order needs them), `per_class` train/val images each."""
    base = root / "tiny-imagenet-200"
    wnids = [row[1] for row in rd.TINY_ROWS]
    _write_lines(base / "wnids.txt", wnids)
    _write_lines(base / "words.txt", [f"{w}\t{row[2]}" for w, row in zip(wnids, rd.TINY_ROWS)])
    train = []
    for label, wnid in enumerate(wnids):
        boxes = []
        for i in range(per_class[0]):
            rgb = palette.next()
            write_jpeg(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", rgb)
            boxes.append(f"{wnid}_{i}.JPEG\t0\t0\t{SIZE}\t{SIZE}")
            train.append((label, rgb))
        _write_lines(base / "train" / wnid / f"{wnid}_boxes.txt", boxes)
    val = [(label, i) for label in range(len(wnids)) for i in range(per_class[1])]
    random.Random(seed).shuffle(val)  # val_annotations.txt is not grouped by class
    lines, expected_val = [], []
    for k, (label, _) in enumerate(val):
        rgb = palette.next()
        write_jpeg(base / "val" / "images" / f"val_{k}.JPEG", rgb)
        lines.append(f"val_{k}.JPEG\t{wnids[label]}\t0\t0\t{SIZE}\t{SIZE}")
        expected_val.append((label, rgb))
    _write_lines(base / "val" / "val_annotations.txt", lines)
    return {"train": train, "test": expected_val}


MTIL_MAKERS = {
    "Aircraft": make_aircraft,
    "Caltech101": make_caltech101,
    "CIFAR100": lambda root, palette: make_cifar100(root),
    "DTD": make_dtd,
    "EuroSAT": make_eurosat,
    "Flowers": make_flowers102,
    "Food": make_food101,
    "MNIST": lambda root, palette: make_mnist(root),
    "OxfordPet": make_oxford_pet,
    "StanfordCars": make_stanford_cars,
    "SUN397": make_sun397,
}


def make_all(root: Path, names=None) -> dict[str, Expected]:
    """Write the named MTIL miniatures (default: all 11) plus TinyImageNet under one root."""
    palette = Palette()
    made = {name: MTIL_MAKERS[name](root, palette) for name in (names or MTIL_MAKERS) if name in MTIL_MAKERS}
    if names is None or "TinyImageNet" in names:
        made["TinyImageNet"] = make_tinyimagenet(root, palette)
    return made
