"""The 11 MTIL datasets: protocol data (PROTOCOL.md G.1-G.3) and loaders for the real on-disk layouts.

Layout under the data root = what torchvision's classes expect (KeepLoRA's README layout). Splits,
class names and sizes follow G.2: official splits everywhere except Caltech101, EuroSAT and SUN397,
which are split 80/20 with seed 42 (see `split_indices`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cl_bench.errors import UserError

from . import _readers as rd
from ._common import (
    ArrayImageDataset,
    DataLayoutError,
    DataMissingError,
    ImageDataset,
    ImageFileDataset,
    LayoutProblem,
    data_lines,
)
from .splits import reference_split_indices

SEED = 42
TRAIN_FRACTION = 0.8
SPLIT_FILE_FORMAT = "cl-bench-split/1"


def _spaces(names) -> tuple[str, ...]:
    """Reference `process_labels`: underscores become spaces."""
    return tuple(name.replace("_", " ") for name in names)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    classnames: tuple[str, ...]  # exactly as the reference code builds them; label t is classnames[t]
    templates_ensemble: tuple[str, ...]  # ZSCL/MoE list ("{}" = class name); [0] is their training prompt
    template_single: str  # KeepLoRA's templates[0], used by it for training and evaluation
    expected_sizes: tuple[int, int]  # (train, test) with the full data
    expected_layout: str  # human-readable, for error messages
    base_dir: str  # the dataset's folder under the data root
    random_split: bool = False  # split 80/20 with seed 42 instead of an official split
    reader: Callable | None = field(default=None, repr=False, compare=False)  # (root, split) -> samples


_CIFAR_TEMPLATES = (
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.", "a photo of the {}.",
    "a blurry photo of the {}.", "a black and white photo of the {}.", "a low contrast photo of the {}.",
    "a high contrast photo of the {}.", "a bad photo of the {}.", "a good photo of the {}.",
    "a photo of the small {}.", "a photo of the big {}.",
)  # fmt: skip
_CALTECH_TEMPLATES = (
    "a photo of a {}.", "a painting of a {}.", "a plastic {}.", "a sculpture of a {}.", "a sketch of a {}.",
    "a tattoo of a {}.", "a toy {}.", "a rendition of a {}.", "a embroidered {}.", "a cartoon {}.",
    "a {} in a video game.", "a plushie {}.", "a origami {}.", "art of a {}.", "graffiti of a {}.",
    "a drawing of a {}.", "a doodle of a {}.", "a photo of the {}.", "a painting of the {}.",
    "the plastic {}.", "a sculpture of the {}.", "a sketch of the {}.", "a tattoo of the {}.",
    "the toy {}.", "a rendition of the {}.", "the embroidered {}.", "the cartoon {}.",
    "the {} in a video game.", "the plushie {}.", "the origami {}.", "art of the {}.",
    "graffiti of the {}.", "a drawing of the {}.", "a doodle of the {}.",
)  # fmt: skip
_DTD_TEMPLATES = (
    "a photo of a {} texture.", "a photo of a {} pattern.", "a photo of a {} thing.",
    "a photo of a {} object.", "a photo of the {} texture.", "a photo of the {} pattern.",
    "a photo of the {} thing.", "a photo of the {} object.",
)  # fmt: skip
_CARS_TEMPLATES = (
    "a photo of a {}, a type of car.", "a photo of a {}.", "a photo of the {}.", "a photo of my {}.",
    "i love my {}!", "a photo of my dirty {}.", "a photo of my clean {}.", "a photo of my new {}.",
    "a photo of my old {}.",
)  # fmt: skip
EUROSAT_CLASSNAMES = (
    "annual crop land", "forest", "brushland or shrubland", "highway or road",
    "industrial buildings or commercial buildings", "pasture land", "permanent crop land",
    "residential buildings or homes or apartments", "river", "lake or sea",
)  # fmt: skip
MNIST_CLASSNAMES = (
    "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
    "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
)  # fmt: skip


def _spec(name, classnames, templates, sizes, layout, reader, single=None, random_split=False):
    return DatasetSpec(
        name=name,
        classnames=tuple(classnames),
        templates_ensemble=tuple(templates),
        template_single=single or templates[0],
        expected_sizes=sizes,
        expected_layout=layout,
        base_dir=layout.split("/")[0],
        reader=reader,
        random_split=random_split,
    )


_SPECS = (
    _spec("Aircraft", _spaces(rd.AIRCRAFT_VARIANTS),
          ("a photo of a {}, a type of aircraft.", "a photo of the {}, a type of aircraft."), (3334, 3333),
          "fgvc-aircraft-2013b/data/{variants.txt,images_variant_train.txt,images_variant_test.txt,"
          "images/<id>.jpg}", rd.read_aircraft),
    _spec("Caltech101", data_lines("caltech101_classnames.txt"), _CALTECH_TEMPLATES, (6941, 1736),
          "caltech101/101_ObjectCategories/<class>/image_NNNN.jpg", rd.read_caltech101, random_split=True),
    _spec("CIFAR100", _spaces(rd.CIFAR100_RAW), _CIFAR_TEMPLATES, (50000, 10000),
          "cifar-100-python/{train,test,meta} (python pickles)", rd.read_cifar100_raw),
    _spec("DTD", _spaces(rd.DTD_CLASSES), _DTD_TEMPLATES, (1880, 1880),
          "dtd/dtd/{labels/train1.txt,labels/test1.txt,images/<class>/<file>.jpg}", rd.read_dtd,
          single="a photo of a {} thing."),
    _spec("EuroSAT", EUROSAT_CLASSNAMES,
          ("a centered satellite photo of {}.", "a centered satellite photo of a {}.",
           "a centered satellite photo of the {}."), (21600, 5400),
          "eurosat/2750/<ClassFolder>/<file>.jpg", rd.read_eurosat, random_split=True),
    _spec("Flowers", data_lines("flowers102_classnames.txt"), ("a photo of a {}, a type of flower.",),
          (1020, 6149), "flowers-102/{imagelabels.mat,setid.mat,jpg/image_NNNNN.jpg}", rd.read_flowers102),
    _spec("Food", _spaces(rd.FOOD_CLASSES), ("a photo of a {}, a type of food.",), (75750, 25250),
          "food-101/{meta/train.json,meta/test.json,images/<class>/<id>.jpg}", rd.read_food101),
    _spec("MNIST", MNIST_CLASSNAMES, ('a photo of the number: "{}".',), (60000, 10000),
          "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (or the .gz files)", rd.read_mnist),
    _spec("OxfordPet", data_lines("oxford_pet_classes.txt"), ("a photo of a {}, a type of pet.",),
          (3680, 3669), "oxford-iiit-pet/{annotations/trainval.txt,annotations/test.txt,images/<id>.jpg}",
          rd.read_oxford_pet),
    _spec("StanfordCars", _spaces(rd.CARS_CLASSES), _CARS_TEMPLATES, (8144, 8041),
          "stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_test_annos_withlabels.mat,"
          "cars_train/*.jpg,cars_test/*.jpg}", rd.read_stanford_cars,
          single="a photo of the {}, a type of car."),
    _spec("SUN397", _spaces(line[3:] for line in rd.SUN397_CLASS_FILE),
          ("a photo of a {}.", "a photo of the {}."), (87003, 21751),
          "SUN397/{ClassName.txt,<letter>/<class>[/<subclass>]/sun_*.jpg}", rd.read_sun397,
          single="a photo of the {}.", random_split=True),
)  # fmt: skip

MTIL_DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
MTIL_ORDER_I: list[str] = [
    "Aircraft", "Caltech101", "CIFAR100", "DTD", "EuroSAT", "Flowers",
    "Food", "MNIST", "OxfordPet", "StanfordCars", "SUN397",
]  # fmt: skip
MTIL_ORDER_II: list[str] = [
    "StanfordCars", "Food", "MNIST", "OxfordPet", "Flowers", "SUN397",
    "Aircraft", "Caltech101", "DTD", "EuroSAT", "CIFAR100",
]  # fmt: skip


def get_spec(name: str) -> DatasetSpec:
    """The spec of an MTIL dataset; the name is matched case-insensitively."""
    for key, spec in MTIL_DATASETS.items():
        if key.lower() == name.lower():
            return spec
    raise UserError(f"unknown MTIL dataset {name!r}; choose from {', '.join(MTIL_DATASETS)}")


# What malformed files make the readers (and pickle / numpy / json underneath) raise.
_READ_ERRORS = (LayoutProblem, OSError, ValueError, KeyError, IndexError, EOFError, pickle.UnpicklingError)


def read_samples(name: str, root: str | Path, split: str, reader: Callable, base_dir: str, layout: str):
    """Run a format reader, turning every way it can fail into a one-line UserError."""
    base = Path(root).expanduser() / base_dir
    if not base.is_dir():
        raise DataMissingError(f"{name} data not found: expected folder {base} with layout {layout}")
    try:
        return reader(Path(root).expanduser(), split)
    except _READ_ERRORS as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataLayoutError(f"{name} data at {base} is not laid out as expected ({reason}); "
                              f"expected layout {layout}") from err  # fmt: skip


def _wrap(spec: DatasetSpec, root, split, transform) -> ImageDataset:
    images, labels = read_samples(spec.name, root, split, spec.reader, spec.base_dir, spec.expected_layout)
    if isinstance(images, list):
        base = Path(root).expanduser() / spec.base_dir
        return ImageFileDataset(images, labels, spec.classnames, transform, base=base)
    return ArrayImageDataset(images, labels, spec.classnames, transform)


def load_mtil_full(name: str, root: str | Path, transform=None) -> ImageDataset:
    """All samples of a randomly split dataset (Caltech101, EuroSAT, SUN397), in our sorted order."""
    spec = get_spec(name)
    if not spec.random_split:
        raise UserError(f"{spec.name} has official train/test splits; use load_mtil_split")
    return _wrap(spec, root, "all", transform)


def load_mtil_splits(name: str, root: str | Path, transform=None,
                     split_file: str | Path | None = None) -> tuple[ImageDataset, ImageDataset]:
    """(train, test) of an MTIL dataset; items are (transform(RGB image), label), label t = classnames[t].

    Caltech101, EuroSAT and SUN397 are read once (one walk of the folder tree) and split by `split_file`
    when given (see `save_split_file`), otherwise by `split_indices`.
    """
    spec = get_spec(name)
    if not spec.random_split:
        return _wrap(spec, root, "train", transform), _wrap(spec, root, "test", transform)
    full = load_mtil_full(spec.name, root, transform)
    train, test = _split_of(spec, full, split_file)
    return full.subset(train), full.subset(test)


def load_mtil_split(
    name: str,
    root: str | Path,
    split: Literal["train", "test"],
    transform=None,
    split_file: str | Path | None = None,
) -> ImageDataset:
    """One split of an MTIL dataset (see `load_mtil_splits`)."""
    spec = get_spec(name)
    if split not in ("train", "test"):
        raise UserError(f"split must be 'train' or 'test', not {split!r}")
    if not spec.random_split:  # an official split: read only this one
        return _wrap(spec, root, split, transform)
    return load_mtil_splits(spec.name, root, transform, split_file)[split == "test"]


def _split_of(spec: DatasetSpec, full: ImageFileDataset, split_file):
    if split_file is not None:
        return _read_split_file(spec, full, Path(split_file))
    return reference_split_indices(len(full), seed=SEED, train_fraction=TRAIN_FRACTION)


def split_indices(name: str, root: str | Path, split_file: str | Path | None = None):
    """(train_idx, test_idx) into `load_mtil_full(name, root)` for the 80/20 random splits.

    Mechanics of the reference (ZSCL, KeepLoRA, MoE): `torch.utils.data.random_split(dataset,
    [int(0.8 * n), n - int(0.8 * n)], generator=torch.Generator().manual_seed(42))`, i.e.
    perm = torch.randperm(n, generator) over the dataset's sample order; train = perm[:int(0.8n)],
    test = the rest. We apply the same permutation to our sample order, which is sorted:

    * Caltech101 (sorted class folders, numbered files) and EuroSAT (ImageFolder: sorted folders and
      files) already had a sorted order in the reference, so the split is identical to theirs.
    * SUN397's reference order is `Path.rglob` order, which depends on the filesystem, so the
      reference split is not reproducible across machines; ours is the split of the sorted
      relative paths. Save it with `save_split_file` next to the scenario version so every machine
      uses the same one (also guarding against a future change of `torch.randperm`).
    """
    spec = get_spec(name)
    return _split_of(spec, load_mtil_full(spec.name, root), split_file)


def save_split_file(name: str, root: str | Path, path: str | Path) -> Path:
    """Write the current split of a randomly split dataset as lists of relative paths (JSON)."""
    spec = get_spec(name)
    full = load_mtil_full(spec.name, root)
    train, test = split_indices(spec.name, root)
    rel = full.relpaths()
    record = {
        "format": SPLIT_FILE_FORMAT,
        "dataset": spec.name,
        "seed": SEED,
        "train_fraction": TRAIN_FRACTION,
        "order": "sorted relative paths, then torch.randperm(n, Generator().manual_seed(seed))",
        "num_samples": len(full),
        "train": [rel[i] for i in train],
        "test": [rel[i] for i in test],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=0) + "\n")
    return path


def load_split_file(name: str, root: str | Path, path: str | Path) -> tuple[list[int], list[int]]:
    """(train_idx, test_idx) into `load_mtil_full(name, root)` as recorded in a split file."""
    spec = get_spec(name)
    return _read_split_file(spec, load_mtil_full(spec.name, root), Path(path))


def _read_split_file(spec: DatasetSpec, full: ImageFileDataset, path: Path):
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read split file {path}: {' '.join(str(err).split())}") from err
    if record.get("format") != SPLIT_FILE_FORMAT or record.get("dataset") != spec.name:
        raise UserError(f"{path} is not a {SPLIT_FILE_FORMAT} split file for {spec.name}")
    position = {rel: i for i, rel in enumerate(full.relpaths())}
    missing = [rel for rel in record["train"] + record["test"] if rel not in position]
    if missing:
        raise UserError(f"{len(missing)} images of split file {path} are not under {full.base} "
                        f"(first: {missing[0]})")  # fmt: skip
    return [position[r] for r in record["train"]], [position[r] for r in record["test"]]
