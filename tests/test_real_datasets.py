"""Real-dataset layer: readers on miniature copies in the real formats, protocol data, splits, checks."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd
from torchvision.transforms import ToTensor

from cl_bench.benchmarks import real as R
from cl_bench.benchmarks.real import _readers as rd
from cl_bench.benchmarks.real import mtil_datasets as md
from cl_bench.errors import UserError

try:
    import real_data_fixtures as fx
except ImportError:  # tests/ became a package
    from tests import real_data_fixtures as fx


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """All 11 MTIL miniatures and TinyImageNet under one root; tests must not modify it."""
    root = tmp_path_factory.mktemp("data")
    return root, fx.make_all(root)


def _rgb(dataset) -> list[tuple[int, ...]]:
    return [tuple(np.asarray(dataset[i][0])[0, 0].tolist()) for i in range(len(dataset))]


def assert_samples(dataset, records, labels=None):
    """Labels and per-sample colours (hence order) as the fixture wrote them."""
    assert dataset.targets == (labels if labels is not None else [label for label, _ in records])
    for got, (_, want) in zip(_rgb(dataset), records, strict=True):
        assert max(abs(a - b) for a, b in zip(got, want)) <= 3, (got, want)


# --- protocol data (docs/protocols.md P2-P6, P10-P12) ----------------------------------------------------

# name: (#classes, #templates, ZSCL/MoE templates[0], KeepLoRA templates[0], (train, test) sizes)
PROTOCOL = {
    "Aircraft": (100, 2, "a photo of a {}, a type of aircraft.", None, (3334, 3333)),
    "Caltech101": (101, 34, "a photo of a {}.", None, (6941, 1736)),
    "CIFAR100": (100, 18, "a photo of a {}.", None, (50000, 10000)),
    "DTD": (47, 8, "a photo of a {} texture.", "a photo of a {} thing.", (1880, 1880)),
    "EuroSAT": (10, 3, "a centered satellite photo of {}.", None, (21600, 5400)),
    "Flowers": (102, 1, "a photo of a {}, a type of flower.", None, (1020, 6149)),
    "Food": (101, 1, "a photo of a {}, a type of food.", None, (75750, 25250)),
    "MNIST": (10, 1, 'a photo of the number: "{}".', None, (60000, 10000)),
    "OxfordPet": (37, 1, "a photo of a {}, a type of pet.", None, (3680, 3669)),
    "StanfordCars": (196, 9, "a photo of a {}, a type of car.", "a photo of the {}, a type of car.",
                     (8144, 8041)),  # fmt: skip
    "SUN397": (397, 2, "a photo of a {}.", "a photo of the {}.", (87003, 21751)),
}


@pytest.mark.parametrize("name", list(PROTOCOL))
def test_spec_matches_protocol(name):
    n_classes, n_templates, first, single, sizes = PROTOCOL[name]
    spec = R.get_spec(name.upper())
    assert spec.name == name and len(spec.classnames) == len(set(spec.classnames)) == n_classes
    assert len(spec.templates_ensemble) == n_templates and spec.templates_ensemble[0] == first
    assert spec.template_single == (single or first)
    assert spec.expected_sizes == sizes
    assert all("{}" in t and "_" not in "".join(spec.classnames) for t in spec.templates_ensemble)


def test_class_names_as_reference_builds_them():
    names = {name: R.get_spec(name).classnames for name in PROTOCOL}
    assert names["Caltech101"][:4] == ("off-center face", "centered face", "leopard", "motorbike")
    assert names["Caltech101"][29] == "head of a  crocodile"  # double space in the reference list
    assert names["Caltech101"][rd.CALTECH_FOLDERS.index("car_side")] == "side of a car"
    assert names["EuroSAT"][2] == "brushland or shrubland" and names["EuroSAT"][9] == "lake or sea"
    assert names["Flowers"][59] == "pink-yellow dahlia"  # torchvision: "pink-yellow dahlia?"
    assert names["Flowers"][92] == "ball moss"  # CLIP: "air plant"
    assert names["MNIST"] == tuple(tvd.MNIST.classes)
    assert [i for i, (a, b) in enumerate(zip(names["Flowers"], tvd.Flowers102.classes)) if a != b] == [59]
    assert names["CIFAR100"][1] == "aquarium fish" and names["Food"][0] == "apple pie"
    assert names["SUN397"][8] == "apartment building/outdoor" and names["SUN397"][207] == "jail cell"
    assert names["StanfordCars"][173] == "Ram C/V Cargo Van Minivan 2012"
    assert names["OxfordPet"][2] == "American Pit Bull Terrier" and names["Aircraft"][73] == "F/A-18"
    assert names["DTD"][30] == "polka-dotted"


def test_orders():
    assert R.MTIL_ORDER_I == list(R.MTIL_DATASETS)
    assert sorted(R.MTIL_ORDER_II) == sorted(R.MTIL_ORDER_I)
    # ZSCL's notebook builds Order II from alphabetical indices [9,6,7,8,5,10,0,1,3,4,2].
    assert R.MTIL_ORDER_II == [R.MTIL_ORDER_I[i] for i in (9, 6, 7, 8, 5, 10, 0, 1, 3, 4, 2)]


# --- loaders on the miniatures ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in PROTOCOL if not R.get_spec(n).random_split])
def test_official_splits_load_with_right_labels(mini, name):
    root, made = mini
    for split in ("train", "test"):
        dataset = R.load_mtil_split(name, root, split)
        assert dataset.classnames == R.get_spec(name).classnames
        assert_samples(dataset, made[name][split])
    for split, dataset in zip(("train", "test"), R.load_mtil_splits(name, root), strict=True):
        assert_samples(dataset, made[name][split])


@pytest.mark.parametrize("name", ["Caltech101", "EuroSAT", "SUN397"])
def test_random_splits_are_80_20_of_the_sorted_samples(mini, name):
    root, made = mini
    full = R.load_mtil_full(name, root)
    assert_samples(full, made[name]["all"])
    assert full.relpaths() == sorted(full.relpaths())
    train, test = R.split_indices(name, root)
    n = len(full)
    assert len(train) == int(0.8 * n) and sorted(train + test) == list(range(n))
    assert (train, test) == R.reference_split_indices(n)
    assert R.load_mtil_split(name, root, "train").relpaths() == [full.relpaths()[i] for i in train]
    assert R.load_mtil_split(name, root, "test").targets == [full.targets[i] for i in test]
    both = R.load_mtil_splits(name, root)
    assert [d.relpaths() for d in both] == [[full.relpaths()[i] for i in idx] for idx in (train, test)]


@pytest.mark.parametrize("n", [4, 7, 48, 8677, 27000, 108754])
def test_reference_split_mechanics(n):
    """int(0.8 * n) train samples (floor, as the reference passes integer lengths), the rest test,
    taken from torch's seed-42 permutation exactly as random_split does."""
    train, test = R.reference_split_indices(n)
    assert len(train) == int(0.8 * n) and len(test) == n - int(0.8 * n)
    reference = torch.utils.data.random_split(
        range(n), [int(0.8 * n), n - int(0.8 * n)], generator=torch.Generator().manual_seed(42)
    )
    assert (train, test) == (list(reference[0].indices), list(reference[1].indices))
    expected = {8677: 6941, 27000: 21600, 108754: 87003}  # Caltech101, EuroSAT, SUN397 (docs/protocols.md P4)
    assert n not in expected or len(train) == expected[n]


def test_transform_and_rgb(mini):
    root, _ = mini
    image, label = R.load_mtil_split("MNIST", root, "train", transform=ToTensor())[0]
    assert image.shape == (3, 28, 28) and label == 1  # greyscale digits come out RGB
    assert image[0, 27, 0] * 255 == pytest.approx(10 + 4 * 27)  # rows not transposed
    image, _ = R.load_mtil_split("DTD", root, "test", transform=ToTensor())[0]
    assert image.shape == (3, fx.SIZE, fx.SIZE)


def test_mnist_reads_gz_files_too(tmp_path):
    expected = fx.make_mnist(tmp_path, sizes=(12, 5), gz=True)
    assert_samples(R.load_mtil_split("MNIST", tmp_path, "test"), expected["test"])


TORCHVISION = {
    "Aircraft": lambda root, split: tvd.FGVCAircraft(root, split=split),
    "Caltech101": lambda root, split: tvd.Caltech101(root),
    "CIFAR100": lambda root, split: tvd.CIFAR100(root, train=split == "train"),
    "DTD": lambda root, split: tvd.DTD(root, split=split),
    "EuroSAT": lambda root, split: tvd.EuroSAT(root),
    "Flowers": lambda root, split: tvd.Flowers102(root, split=split),
    "Food": lambda root, split: tvd.Food101(root, split=split),
    "MNIST": lambda root, split: tvd.MNIST(root, train=split == "train"),
    "OxfordPet": lambda root, split: tvd.OxfordIIITPet(root, "trainval" if split == "train" else "test"),
    "StanfordCars": lambda root, split: tvd.StanfordCars(root, split=split),
}


def _our_class(name, label):
    """Our label as the reference identifies the class: the folder where the names are hand-written
    (the reference's labels are folder positions), the label where the files hold absolute labels,
    else the name."""
    folders = {"Caltech101": rd.CALTECH_FOLDERS, "EuroSAT": rd.EUROSAT_FOLDERS}
    if name in ("Flowers", "OxfordPet"):
        return label
    return folders[name][label] if name in folders else R.get_spec(name).classnames[label]


def _reference_class(name, label, names):
    if name in ("Flowers", "OxfordPet"):
        return label
    return names[label] if name in ("Caltech101", "EuroSAT") else names[label].replace("_", " ")


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_same_samples_as_torchvision(mini, monkeypatch, tmp_path, name):
    """The reference loaders, run on the same files, give the same images in the same order with
    the same classes. CIFAR100 and Flowers102 check archive MD5 sums, which we switch off."""
    root, _ = mini
    if name == "Caltech101":  # torchvision creates root/caltech101 if absent: use a private copy
        fx.make_caltech101(tmp_path, fx.Palette())
        root = tmp_path
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    monkeypatch.setattr("torchvision.datasets.flowers102.check_integrity", lambda *a, **k: True)
    for split in ("train", "test") if name not in ("Caltech101", "EuroSAT") else ("all",):
        ours = R.load_mtil_full(name, root) if split == "all" else R.load_mtil_split(name, root, split)
        reference = TORCHVISION[name](root, split)
        names = getattr(reference, "categories", None) or getattr(reference, "classes", None)
        assert len(ours) == len(reference) > 0
        for i in range(len(ours)):
            (image, label), (ref_image, ref_label) = ours[i], reference[i]
            assert np.array_equal(np.asarray(image), np.asarray(ref_image.convert("RGB")))
            assert _our_class(name, label) == _reference_class(name, ref_label, names)
        if name == "OxfordPet":  # torchvision names the classes present, in label order
            assert names == [R.get_spec(name).classnames[t] for t in sorted(set(ours.targets))]


@pytest.mark.parametrize("name", ["Caltech101", "EuroSAT"])
def test_random_split_identical_to_reference(mini, tmp_path, name):
    """Where the reference order was already sorted, our split is exactly torch's random_split."""
    root, _ = mini
    if name == "Caltech101":
        fx.make_caltech101(tmp_path, fx.Palette())
        root = tmp_path
    reference = TORCHVISION[name](root, "all")
    n = len(reference)
    ref_train, ref_test = torch.utils.data.random_split(
        reference, [int(0.8 * n), n - int(0.8 * n)], generator=torch.Generator().manual_seed(42)
    )
    assert R.split_indices(name, root) == (list(ref_train.indices), list(ref_test.indices))


class _Listing:
    """os.scandir/os.listdir returning entries in a fixed (ascending or descending) name order,
    standing in for filesystems that list directories in different orders."""

    def __init__(self, descending):
        self.descending, self.scandir, self.listdir = descending, os.scandir, os.listdir

    def scandir_(self, path="."):
        with self.scandir(path) as entries:
            return _Entries(sorted(entries, key=lambda e: e.name, reverse=self.descending))

    def listdir_(self, path="."):
        return sorted(self.listdir(path), reverse=self.descending)


class _Entries:
    def __init__(self, entries):
        self._it = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass


def test_sun397_split_does_not_depend_on_listing_order(monkeypatch, tmp_path):
    fx.make_sun397(tmp_path, fx.Palette())
    ours, reference = {}, {}
    for descending in (False, True):
        listing = _Listing(descending)
        with monkeypatch.context() as m:
            m.setattr(os, "scandir", listing.scandir_)
            m.setattr(os, "listdir", listing.listdir_)
            splits = [R.load_mtil_split("SUN397", tmp_path, split) for split in ("train", "test")]
            ours[descending] = [split.relpaths() for split in splits]
            reference[descending] = [label for _, label in tvd.SUN397(tmp_path)]
    assert reference[False] != reference[True]  # the reference sample order follows the listing ...
    assert ours[False] == ours[True]  # ... ours does not
    rel = sorted(R.load_mtil_full("SUN397", tmp_path).relpaths())
    train, test = R.reference_split_indices(len(rel))
    assert ours[True] == [[rel[i] for i in train], [rel[i] for i in test]]


def test_split_file_round_trip(tmp_path):
    root = tmp_path / "data"
    fx.make_sun397(root, fx.Palette())
    path = R.save_split_file("SUN397", root, tmp_path / "splits" / "sun397.json")
    record = json.loads(path.read_text())
    assert record["dataset"] == "SUN397" and record["seed"] == 42 and record["num_samples"] == 20
    assert len(record["train"]) == 16 and record["train"][0].startswith(("a/", "j/", "y/"))
    assert R.load_split_file("SUN397", root, path) == R.split_indices("SUN397", root)
    assert R.load_mtil_split("SUN397", root, "train", split_file=path).relpaths() == record["train"]

    record["train"], record["test"] = record["test"], record["train"]  # the file, not the seed, decides
    path.write_text(json.dumps(record))
    assert R.load_mtil_split("SUN397", root, "train", split_file=path).relpaths() == record["train"]

    (root / "SUN397" / record["test"][3]).unlink()
    with pytest.raises(UserError, match=r"1 images of split file .* are not under"):
        R.load_split_file("SUN397", root, path)
    path.write_text(json.dumps({**record, "dataset": "EuroSAT"}))
    with pytest.raises(UserError, match="not a cl-bench-split/1 split file for SUN397"):
        R.load_split_file("SUN397", root, path)


# --- errors and check_data ---------------------------------------------------------------------------


def test_missing_data_names_path_and_layout(tmp_path):
    with pytest.raises(R.DataMissingError) as err:
        R.load_mtil_split("DTD", tmp_path, "train")
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    assert str(tmp_path / "dtd") in message and "labels/train1.txt" in message
    with pytest.raises(UserError, match="unknown MTIL dataset 'ImageNet'"):
        R.load_mtil_split("ImageNet", tmp_path, "train")
    with pytest.raises(UserError, match="split must be"):
        R.load_mtil_split("DTD", tmp_path, "val")


def test_wrong_layouts_are_reported_on_one_line(tmp_path):
    palette = fx.Palette()
    fx.make_dtd(tmp_path, palette)
    (tmp_path / "dtd" / "dtd" / "labels" / "test1.txt").unlink()
    assert len(R.load_mtil_split("DTD", tmp_path, "train")) == 6
    with pytest.raises(R.DataLayoutError, match=r"missing .*test1\.txt.*expected layout dtd/dtd/"):
        R.load_mtil_split("DTD", tmp_path, "test")

    fx.make_aircraft(tmp_path, palette)
    variants = tmp_path / "fgvc-aircraft-2013b" / "data" / "variants.txt"
    variants.write_text("\n".join(rd.AIRCRAFT_VARIANTS[:-1]))  # an older / different release
    with pytest.raises(R.DataLayoutError, match="differ from the reference table"):
        R.load_mtil_split("Aircraft", tmp_path, "train")

    fx.make_caltech101(tmp_path, palette)
    categories = tmp_path / "caltech101" / "101_ObjectCategories"
    fx.write_jpeg(categories / "Dalmatians" / "image_0001.jpg", (1, 2, 3))
    with pytest.raises(R.DataLayoutError, match="unknown class folder 'Dalmatians'"):
        R.load_mtil_split("Caltech101", tmp_path, "train")

    fx.make_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(R.DataLayoutError) as err:
        R.load_mtil_split("CIFAR100", tmp_path, "test")
    assert "\n" not in str(err.value) and "cifar-100-python" in str(err.value)

    fx.make_stanford_cars(tmp_path, palette)
    (tmp_path / "stanford_cars" / "cars_test_annos_withlabels.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(R.DataLayoutError, match="cars_test_annos_withlabels.mat"):
        R.load_mtil_split("StanfordCars", tmp_path, "test")


def test_check_data_on_complete_tree(mini, monkeypatch):
    root, made = mini
    rows = R.check_data(None, root)
    assert [r.dataset for r in rows] == R.MTIL_ORDER_I + ["TinyImageNet"]
    assert {r.status for r in rows} == {"found"}
    by_name = {r.dataset: r for r in rows}
    assert (by_name["Aircraft"].train, by_name["Aircraft"].test) == (8, 8)
    assert (by_name["Caltech101"].train, by_name["Caltech101"].test) == (38, 10)  # int(0.8 * 48)
    assert (by_name["TinyImageNet"].train, by_name["TinyImageNet"].test) == (200, 200)
    assert by_name["Aircraft"].path == str(root / "fgvc-aircraft-2013b")
    assert not any(r.sizes_match for r in rows)  # miniatures are smaller than the real datasets
    assert by_name["Aircraft"].message == "found 8/8 train/test samples, expected 3334/3333"

    spec = R.get_spec("DTD")
    monkeypatch.setitem(md.MTIL_DATASETS, "DTD", dataclasses.replace(spec, expected_sizes=(6, 6)))
    (row,) = R.check_data(["dtd"], root)
    assert row.status == "found" and row.sizes_match and row.message == ""


def test_check_data_on_partial_and_wrong_trees(tmp_path):
    fx.make_all(tmp_path, ["DTD", "MNIST", "Food", "Flowers", "SUN397"])
    (tmp_path / "food-101" / "images" / "hot_dog" / "100.jpg").unlink()
    (tmp_path / "flowers-102" / "setid.mat").unlink()
    fx.write_jpeg(tmp_path / "SUN397" / "z" / "zebra_crossing" / "sun_zzzz.jpg", (9, 9, 9))
    rows = {r.dataset: r for r in R.check_data(None, tmp_path)}
    assert len(rows) == 12
    assert rows["DTD"].status == rows["MNIST"].status == "found"
    assert rows["MNIST"].train == 30 and rows["MNIST"].test == 20
    missing = {name for name, r in rows.items() if r.status == "missing"}
    assert missing == {"Aircraft", "Caltech101", "CIFAR100", "EuroSAT", "OxfordPet", "StanfordCars",
                       "TinyImageNet"}  # fmt: skip
    assert rows["StanfordCars"].path == str(tmp_path / "stanford_cars") and rows["StanfordCars"].train is None
    assert "stanford_cars/{devkit/cars_meta.mat" in rows["StanfordCars"].message
    assert rows["Food"].status == "wrong layout" and "1 listed images are missing" in rows["Food"].message
    assert rows["Flowers"].status == "wrong layout" and "setid.mat" in rows["Flowers"].message
    assert rows["SUN397"].status == "wrong layout"
    with pytest.raises(UserError, match="unknown dataset 'ImageNet'; choose from Aircraft, .*TinyImageNet"):
        R.check_data(["ImageNet"], tmp_path)
    assert "unknown scene class 'zebra_crossing'" in rows["SUN397"].message


# --- few-shot ----------------------------------------------------------------------------------------


def test_few_shot_indices():
    targets = [i % 7 for i in range(140)] + [7, 7]  # class 7 has only two samples
    chosen = R.few_shot_indices(targets, shots=5, seed=0)
    assert Counter(targets[i] for i in chosen) == {**{c: 5 for c in range(7)}, 7: 2}
    assert chosen == sorted(set(chosen)) and {140, 141} <= set(chosen)
    assert chosen == R.few_shot_indices(targets, shots=5, seed=0)
    assert chosen != R.few_shot_indices(targets, shots=5, seed=1)
    assert chosen[:5] == R.few_shot_indices(targets[:140], shots=5, seed=0)[:5]  # per class, independent
    assert [i for i in chosen if targets[i] == 0] == [21, 42, 56, 98, 119]  # pins the selection rule
    with pytest.raises(ValueError):
        R.few_shot_indices(targets, shots=0)


# --- class-incremental -------------------------------------------------------------------------------


def test_cil_protocol_data():
    assert R.class_order("CIFAR100")[:5] == (87, 0, 52, 58, 44) and R.class_order("cifar100")[-1] == 39
    assert sorted(R.class_order("CIFAR100")) == list(range(100))
    assert R.class_order("TinyImageNet")[:8] == (131, 181, 22, 172, 144, 92, 97, 187)
    assert sorted(R.class_order("TinyImageNet")) == list(range(200))
    cifar, tiny = R.cil_classnames("CIFAR100"), R.cil_classnames("TinyImageNet")
    assert cifar[0] == "television" and cifar[50] == "aquarium_fish"  # underscores kept, as continuum
    assert tiny[:2] == ("Persian cat", "stick insect") and tiny[-1] == "pill bottle"
    for name, steps, first, size in (("CIFAR100", 10, 10, 10), ("CIFAR100", 20, 5, 5), ("CIFAR100", 50, 2, 2),
                                     ("TinyImageNet", 5, 100, 20), ("TinyImageNet", 10, 100, 10),
                                     ("TinyImageNet", 20, 100, 5)):  # fmt: skip
        tasks = R.cil_task_classes(name, steps)
        assert len(tasks[0]) == first and {len(t) for t in tasks[1:]} == {size}
        assert len(tasks) == (steps if name == "CIFAR100" else steps + 1)
        assert [c for t in tasks for c in t] == list(range(len(R.class_order(name))))
    with pytest.raises(UserError, match="not 7"):
        R.cil_task_classes("CIFAR100", 7)


def test_cil_loaders_remap_labels_to_class_order_positions(mini):
    root, made = mini
    for name in ("CIFAR100", "TinyImageNet"):
        order = R.class_order(name)
        position = {c: k for k, c in enumerate(order)}
        for split in ("train", "test"):
            dataset = R.load_cil_split(name, root, split)
            records = made[name][split]
            assert dataset.classnames == R.cil_classnames(name)
            assert_samples(dataset, records, labels=[position[label] for label, _ in records])
    cifar = R.load_cil_split("CIFAR100", root, "train")
    first_task = R.cil_task_classes("CIFAR100", 10)[0]
    indices = R.task_indices(cifar.targets, first_task)
    assert len(indices) == 20  # 10 classes × 2 images
    # red channel = original label: the first task holds the first 10 classes of the order
    assert {cifar[i][0].getpixel((0, 0))[0] for i in indices} == set(R.class_order("CIFAR100")[:10])
