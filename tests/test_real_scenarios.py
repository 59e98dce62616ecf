"""Real-data scenarios (mtil, mtil-order2, mtil-fewshot, cil-cifar100, cil-tinyimagenet) built on generated
miniature copies of the datasets, `cl-bench data check`, --data-root, and a CPU smoke run of the real ViT-B-16
architecture (random weights loaded from a file) on a miniature MTIL."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torchvision import transforms as T

from cl_bench import registry
from cl_bench.api import BuiltScenario
from cl_bench.benchmarks import pixel_cache
from cl_bench.benchmarks import real as R
from cl_bench.benchmarks import real_scenarios as RS
from cl_bench.cli import main
from cl_bench.errors import UserError

try:
    import real_data_fixtures as fx
except ImportError:  # tests/ became a package
    from tests import real_data_fixtures as fx

NAMES = ["mtil", "mtil-order2", "mtil-fewshot", "cil-cifar100", "cil-tinyimagenet"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """All 11 MTIL miniatures and TinyImageNet under one root; tests must not modify it."""
    root = tmp_path_factory.mktemp("data")
    return root, fx.make_all(root)


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv(RS.DATA_ENV, raising=False)


def build(name, root, backbone, **params) -> BuiltScenario:
    scenario = registry.get_scenario(name)
    return scenario.build({**scenario.defaults, "num_workers": 0, "data_root": str(root), **params}, backbone, 0)


def items(dataset):
    return [dataset[i] for i in range(len(dataset))]


# --- registration --------------------------------------------------------------------------------------------


def test_scenarios_are_registered():
    for name in NAMES:
        s = registry.get_scenario(name)
        assert s.name == name and s.version.startswith(name + "-")
        assert s.profile == ("mtil" if name.startswith("mtil") else "cil") == s.protocol.id
        assert (s.default_backbone, s.default_pretrained) == ("ViT-B-16", "openai")
        assert {"data_root", "prompts", "train_transform", "cache_preprocessed"} <= set(s.defaults)
        assert s.defaults["prompts"] == "single" and s.defaults["train_transform"] == "test"
    assert registry.get_scenario("mtil").defaults["tasks"] == R.MTIL_ORDER_I
    assert registry.get_scenario("mtil-order2").defaults["tasks"] == R.MTIL_ORDER_II
    assert registry.get_scenario("mtil-fewshot").defaults["shots"] == 5
    assert registry.get_scenario("cil-cifar100").defaults["steps"] == 10
    assert registry.get_scenario("cil-tinyimagenet").defaults["steps"] == 10
    assert RS.scenario_datasets(registry.get_scenario("cil-tinyimagenet")) == ["TinyImageNet"]
    assert RS.scenario_datasets(registry.get_scenario("mtil-micro")) is None


# --- MTIL ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,order", [("mtil", R.MTIL_ORDER_I), ("mtil-order2", R.MTIL_ORDER_II)])
def test_mtil_tasks_labels_and_single_prompts(mini, tiny_backbone, name, order):
    root, made = mini
    built = build(name, root, tiny_backbone)
    assert built.protocol.id == "mtil" and [t.name for t in built.tasks] == order
    assert built.info["order"] == order and built.info["prompts"] == "single"
    for task in built.tasks:
        spec = R.get_spec(task.name)
        if spec.random_split:
            full = R.load_mtil_full(task.name, root)
            train_idx, test_idx = R.split_indices(task.name, root)
            want = [full.targets[i] for i in train_idx], [full.targets[i] for i in test_idx]
        else:
            want = [label for label, _ in made[task.name]["train"]], [label for label, _ in made[task.name]["test"]]
        # labels index the task's own classes, in the loaders' order
        assert (task.train.targets, task.test.targets) == want
        assert task.train_prompts == task.eval_prompts == [[spec.template_single.format(c)] for c in spec.classnames]
        x, y = task.test[0]
        assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and isinstance(y, int)
    dtd = built.tasks[order.index("DTD")]
    assert dtd.eval_prompts[0] == ["a photo of a banded thing."]  # KeepLoRA's DTD template
    assert built.eval_prompts(order.index("DTD"), None) == dtd.eval_prompts
    assert built.evaluated(0) == list(range(11))


def test_mtil_ensemble_prompts(mini, tiny_backbone):
    root, _ = mini
    built = build("mtil", root, tiny_backbone, prompts="ensemble", tasks=["DTD", "Caltech101", "MNIST"])
    assert built.info["prompts"] == "ensemble" and [t.name for t in built.tasks] == ["DTD", "Caltech101", "MNIST"]
    dtd, caltech, mnist = built.tasks
    assert dtd.train_prompts[0] == ["a photo of a banded texture."]  # ZSCL's templates[0] for training
    assert len(dtd.eval_prompts[0]) == 8 and dtd.eval_prompts[0][0] == "a photo of a banded texture."
    assert {len(p) for p in caltech.eval_prompts} == {34} and {len(p) for p in caltech.train_prompts} == {1}
    assert len(caltech.eval_prompts) == 101 and mnist.eval_prompts[3] == ['a photo of the number: "3 - three".']


def test_mtil_task_subsets_and_bad_names(mini, tiny_backbone):
    root, _ = mini
    built = build("mtil-order2", root, tiny_backbone, tasks=["mnist", "Flowers"])
    assert [t.name for t in built.tasks] == ["MNIST", "Flowers"]  # names matched case-insensitively
    with pytest.raises(UserError, match="unknown MTIL dataset 'ImageNet'"):
        build("mtil", root, tiny_backbone, tasks=["DTD", "ImageNet"])
    with pytest.raises(UserError, match=r"duplicates: \['DTD'\]"):
        build("mtil", root, tiny_backbone, tasks=["DTD", "dtd"])
    with pytest.raises(UserError, match="prompts='both' is not valid; use one of single, ensemble"):
        build("mtil", root, tiny_backbone, prompts="both")
    with pytest.raises(UserError, match="train_transform='flip' is not valid"):
        build("mtil", root, tiny_backbone, train_transform="flip")


def test_mtil_fewshot_counts_and_seeded_selection(mini, tiny_backbone):
    root, made = mini
    built = build("mtil-fewshot", root, tiny_backbone)
    full = build("mtil", root, tiny_backbone)
    assert built.info["shots"] == 5 and [t.name for t in built.tasks] == R.MTIL_ORDER_I
    for few, task in zip(built.tasks, full.tasks):
        have = Counter(task.train.targets)
        assert Counter(few.train.targets) == {c: min(5, n) for c, n in have.items()}
        assert few.test.targets == task.test.targets  # full test sets
    caltech = dict(zip(R.MTIL_ORDER_I, built.tasks))["Caltech101"]  # 38 train images, 4 classes
    assert len(caltech.train) == 20
    def chosen(**params):  # the selected images, by their pixels
        task = build("mtil-fewshot", root, tiny_backbone, tasks=["Caltech101"], **params).tasks[0]
        return [tuple(x[:, 0, 0].tolist()) for x, _ in items(task.train)]

    two = chosen(shots=2)
    assert len(two) == 8 and chosen(shots=2) == two  # seeded: the same selection every time
    assert chosen(shots=2, shots_seed=1) != two
    with pytest.raises(UserError, match="shots=0 must be at least 1"):
        build("mtil-fewshot", root, tiny_backbone, shots=0)


# --- CIL -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps,size", [(10, 10), (20, 5), (50, 2)])
def test_cil_cifar100_steps(mini, tiny_backbone, steps, size):
    root, _ = mini
    built = build("cil-cifar100", root, tiny_backbone, steps=steps)
    order = R.class_order("CIFAR100")
    assert built.protocol.id == "cil" and len(built.tasks) == steps
    assert built.info["class_order"] == list(order) and built.info["steps"] == steps
    assert built.info["prompts"] == "single"
    names = R.cil_classnames("CIFAR100")
    for s, task in enumerate(built.tasks):
        lo = s * size
        assert task.name == f"classes {lo}-{lo + size - 1}"
        assert sorted(set(task.train.targets)) == list(range(size))  # local to the step's new classes
        assert sorted(set(task.test.targets)) == list(range(lo, lo + size))  # positions in the class order
        assert task.eval_prompts == task.train_prompts == [[f"a bad photo of a {names[k]}."]
                                                           for k in range(lo, lo + size)]
    # the joint classifier after step 2 covers the classes of steps 0-2, in class-order positions
    joint = built.eval_prompts(0, 2)
    assert len(joint) == 3 * size and joint[0] == [f"a bad photo of a {names[0]}."]
    assert built.evaluated(2) == [0, 1, 2] and built.eval_key(1, 2) == "cil-seen:2"
    if steps == 10:
        assert names[0] == "television" and built.tasks[5].eval_prompts[0] == ["a bad photo of a aquarium_fish."]
        # the red channel of the miniature images is the original CIFAR label (see make_cifar100)
        reds = {int(round(float(x[0, 0, 0]) * 0.25 * 255 + 0.5 * 255)) for x, _ in items(built.tasks[0].train)}
        assert reds == set(order[:10])


def test_cil_tinyimagenet_steps_and_ensemble(mini, tiny_backbone):
    root, _ = mini
    built = build("cil-tinyimagenet", root, tiny_backbone, steps=5, prompts="ensemble")
    assert [len(set(t.test.targets)) for t in built.tasks] == [100, 20, 20, 20, 20, 20]
    assert built.info["classes_per_task"] == [100, 20, 20, 20, 20, 20] and built.info["steps"] == 5
    assert [t.name for t in built.tasks][:2] == ["classes 0-99", "classes 100-119"]
    first = built.tasks[1]
    assert sorted(set(first.train.targets)) == list(range(20)) and min(first.test.targets) == 100
    assert first.train_prompts[0] == ["a bad photo of a " + R.cil_classnames("TinyImageNet")[100] + "."]
    assert len(first.eval_prompts[0]) == 18 and first.eval_prompts[0][0] == first.train_prompts[0][0]
    assert len(build("cil-tinyimagenet", root, tiny_backbone, steps=20).tasks) == 21
    with pytest.raises(UserError, match="not 7"):
        build("cil-tinyimagenet", root, tiny_backbone, steps=7)


# --- transforms and the preprocessed cache ---------------------------------------------------------------------


def test_cache_is_exact_and_reused(mini, tiny_backbone, tmp_path, monkeypatch):
    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    tasks = ["Food", "EuroSAT", "MNIST"]
    cached = build("mtil", root, tiny_backbone, tasks=tasks)
    plain = build("mtil", root, tiny_backbone, tasks=tasks, cache_preprocessed=False)
    files = sorted((tmp_path / "cache" / "preprocessed").glob("*.npy"))
    assert [f.name.split("-")[:2] for f in files] == [["EuroSAT", "test"], ["EuroSAT", "train"],
                                                      ["Food", "test"], ["Food", "train"]]  # MNIST: arrays
    for a, b in zip(cached.tasks, plain.tasks):
        assert type(a.test).__name__ == ("CachedImageDataset" if a.name != "MNIST" else "ArrayImageDataset")
        for split in ("train", "test"):
            for (x, y), (x0, y0) in zip(items(getattr(a, split)), items(getattr(b, split)), strict=True):
                assert y == y0 and torch.equal(x, x0)  # bit-identical to decoding the image file
    stamps = [f.stat().st_mtime_ns for f in files]
    rebuilt = build("mtil-order2", root, tiny_backbone, tasks=tasks)  # same images: same files, not rewritten
    assert sorted((tmp_path / "cache" / "preprocessed").glob("*.npy")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert torch.equal(rebuilt.tasks[0].test[1][0], plain.tasks[0].test[1][0])
    # a worker process gets its own memory map
    loader = torch.utils.data.DataLoader(rebuilt.tasks[0].train, batch_size=4, num_workers=1)
    assert torch.equal(next(iter(loader))[0][0], plain.tasks[0].train[0][0])


def test_cached_pixels_normalised_as_a_batch_equal_the_items(mini, tiny_backbone, tmp_path, monkeypatch):
    """The device path: uint8 pixels from the cache, normalised per batch by the backbone (here on the CPU)."""
    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    test = build("mtil", root, tiny_backbone, tasks=["Food"]).tasks[0].test
    pixels = test.pixels()
    x, y = pixels[0]
    assert x.dtype == torch.uint8 and x.shape == (32, 32, 3) and y == test[0][1]
    batch = next(iter(torch.utils.data.DataLoader(pixels, batch_size=len(pixels))))[0]
    assert torch.equal(tiny_backbone.normalize(batch), torch.stack([x for x, _ in items(test)]))


def test_rrc_training_transform(mini, tiny_backbone, tmp_path, monkeypatch):
    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    built = build("mtil", root, tiny_backbone, tasks=["Food"], train_transform="rrc")
    task = built.tasks[0]
    assert type(task.train).__name__ == "ImageFileDataset" and type(task.test).__name__ == "CachedImageDataset"
    rrc = task.train.transform.transforms[0]
    assert isinstance(rrc, T.RandomResizedCrop) and rrc.scale == (0.9, 1.0) and rrc.size == (32, 32)
    assert rrc.interpolation == T.InterpolationMode.BICUBIC
    assert task.train[0][0].shape == (3, 32, 32)
    assert [f.name.split("-")[1] for f in (tmp_path / "cache" / "preprocessed").glob("*.npy")] == ["test"]


def test_pipeline_of_an_open_clip_transform():
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    preprocess = open_clip.image_transform(224, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)

    class Fake:  # what load_backbone returns for ViT-B-16, as far as transforms go
        transform, image_size = preprocess, 224

    pipe = RS.make_pipeline(Fake(), "rrc")
    assert pipe.test.transforms == preprocess.transforms  # the backbone's test transform as is
    assert [type(s).__name__ for s in pipe.prefix.transforms] == ["Resize", "CenterCrop", "MaybeConvertMode"]
    assert [type(s).__name__ for s in pipe.tail.transforms] == ["MaybeToTensor", "Normalize"]
    assert [type(s).__name__ for s in pipe.train.transforms] == ["RandomResizedCrop", "MaybeConvertMode",
                                                                 "MaybeToTensor", "Normalize"]
    assert pipe.train.transforms[0].size == (224, 224) and not pipe.train_is_test
    assert " at 0x" not in pipe.identity and "bicubic" in pipe.identity
    same = RS.make_pipeline(Fake(), "test")
    assert same.train is same.test and same.train_is_test


def test_cache_falls_back_when_the_disk_is_full(mini, tiny_backbone, tmp_path, monkeypatch, capsys):
    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pixel_cache.shutil, "disk_usage", lambda path: SimpleNamespace(free=10))
    built = build("mtil", root, tiny_backbone, tasks=["Food"])
    assert type(built.tasks[0].test).__name__ == "ImageFileDataset" and built.tasks[0].test[0][0].shape == (3, 32, 32)
    assert "warning: not caching preprocessed Food-train" in capsys.readouterr().err
    assert not list((tmp_path / "cache" / "preprocessed").glob("*.npy"))


# --- data root -----------------------------------------------------------------------------------------------


def test_data_root_param_env_and_errors(mini, tiny_backbone, tmp_path, monkeypatch):
    root, _ = mini
    with pytest.raises(UserError, match="no data root: pass --data-root DIR .* CL_BENCH_DATA") as err:
        build("mtil", "", tiny_backbone)
    assert "\n" not in str(err.value)
    monkeypatch.setenv(RS.DATA_ENV, str(root))
    assert build("mtil", "", tiny_backbone, tasks=["DTD"]).info["data_root"] == str(root)
    with pytest.raises(UserError, match=f"data root {tmp_path / 'nowhere'} is not a folder"):
        build("mtil", tmp_path / "nowhere", tiny_backbone)
    fx.make_dtd(tmp_path, fx.Palette())
    with pytest.raises(UserError, match=f"CIFAR100 data not found: expected folder {tmp_path / 'cifar-100-python'}"):
        build("mtil", tmp_path, tiny_backbone, tasks=["DTD", "CIFAR100"])
    with pytest.raises(UserError, match="TinyImageNet data not found"):
        build("cil-tinyimagenet", tmp_path, tiny_backbone)


def test_split_file_dir_writes_then_reads_split_files(tmp_path, tiny_backbone):
    root, splits = tmp_path / "data", tmp_path / "splits"
    fx.make_all(root, ["EuroSAT", "DTD"])
    splits.mkdir()
    built = build("mtil", root, tiny_backbone, tasks=["EuroSAT", "DTD"], split_file_dir=str(splits))
    assert built.info["split_files"] == {"EuroSAT": str(splits / "EuroSAT.json")}  # DTD has an official split
    record = json.loads((splits / "EuroSAT.json").read_text())
    assert len(record["train"]) == len(built.tasks[0].train)
    record["train"], record["test"] = record["test"], record["train"]  # the file decides from now on
    (splits / "EuroSAT.json").write_text(json.dumps(record))
    again = build("mtil", root, tiny_backbone, tasks=["EuroSAT"], split_file_dir=str(splits))
    assert len(again.tasks[0].train) == len(built.tasks[0].test)
    with pytest.raises(UserError, match="split_file_dir .* is not a folder"):
        build("mtil", root, tiny_backbone, tasks=["EuroSAT"], split_file_dir=str(tmp_path / "none"))


# --- CLI: data check and --data-root ---------------------------------------------------------------------------


def test_data_check_complete_tree(mini, capsys, monkeypatch):
    root, _ = mini
    assert main(["data", "check", "--scenario", "mtil", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "all 11 datasets found" in out and "missing" not in out
    assert "3,334" in out and "fgvc-aircraft-2013b/" in out
    monkeypatch.setenv(RS.DATA_ENV, str(root))  # the environment variable is the default data root
    assert main(["data", "check", "--scenario", "cil-tinyimagenet"]) == 0
    out = capsys.readouterr().out
    assert "TinyImageNet" in out and "200 / 100,000" in out


def test_data_check_partial_tree(tmp_path, capsys):
    fx.make_all(tmp_path, ["DTD", "MNIST"])
    assert main(["data", "check", "--scenario", "mtil-order2", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "9 of 11 datasets missing or wrongly laid out" in out
    assert f"StanfordCars missing: expected folder {tmp_path / 'stanford_cars'} with layout" in out
    assert out.count(" missing: expected folder ") == 9
    assert main(["data", "check", "--scenario", "cil-cifar100", "--data-root", str(tmp_path)]) == 1
    assert f"expected folder {tmp_path / 'cifar-100-python'}" in capsys.readouterr().out


def test_data_check_wrong_layout(tmp_path, capsys):
    fx.make_all(tmp_path, ["CIFAR100", "Food"])
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    assert main(["data", "check", "--scenario", "cil-cifar100", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "wrong layout" in out and "CIFAR100 wrong layout: CIFAR100 data at" in out
    shutil.rmtree(tmp_path / "food-101" / "images" / "hot_dog")
    assert main(["data", "check", "--scenario", "mtil", "--data-root", str(tmp_path)]) == 1
    assert "listed images are missing" in capsys.readouterr().out


def test_data_check_errors(tmp_path, capsys):
    assert main(["data", "check", "--scenario", "nope", "--data-root", str(tmp_path)]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
    assert main(["data", "check", "--scenario", "mtil-micro", "--data-root", str(tmp_path)]) == 2
    assert "reads no data from disk" in capsys.readouterr().err
    assert main(["data", "check", "--scenario", "mtil"]) == 2
    assert "no data root" in capsys.readouterr().err


def test_data_root_option_refused_without_data(tmp_path, capsys):
    assert main(["run", "--method", "zeroshot", "--scenario", "mtil-micro", "--data-root", str(tmp_path),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--data-root: scenario mtil-micro reads no data from disk" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--method", "zeroshot", "--scenario", "mtil", "--data-root", str(tmp_path),
                 "--set", "data_root=/elsewhere", "--out", str(tmp_path)]) == 2
    assert "disagree" in capsys.readouterr().err


def test_run_with_tiny_backbone_on_real_tree(mini, tmp_path, tiny_backbone):
    root, _ = mini
    out = tmp_path / "out"
    code = main(["run", "--method", "lora", "--scenario", "mtil", "--backbone", "tiny-test", "--data-root", str(root),
                 "--set", "tasks=[DTD,MNIST]", "--set", "iterations=2", "--set", "batch_size=4",
                 "--set", "prompts=ensemble", "--device", "cpu", "--quiet", "--out", str(out)])
    assert code == 0
    res = json.loads((out / "mtil" / "lora" / "seed0.json").read_text())
    assert res["status"] == "finished" and res["tasks"] == ["DTD", "MNIST"] and len(res["matrix"]) == 2
    assert res["backbone"]["prompts"] == "ensemble" and res["scenario_version"] == "mtil-1"
    assert res["config"]["params"]["data_root"] == str(root) and res["test_sizes"] == [6, 20]
    assert res["scenario_info"]["order"] == ["DTD", "MNIST"]


# --- the real architecture -----------------------------------------------------------------------------------


def test_vit_b16_random_weights_smoke(tmp_path, capsys):
    """ViT-B-16 with random weights saved as a plain state dict and loaded through --pretrained FILE, LoRA
    on 2 miniature MTIL tasks (a couple of steps each) at 224 px on CPU."""
    import open_clip

    t0 = time.perf_counter()
    root = tmp_path / "data"
    palette = fx.Palette()
    fx.make_eurosat(root, palette, folders=(0, 3, 9), per_class=2)  # 6 images: 4 train / 2 test
    fx.make_mnist(root, sizes=(4, 3))
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    weights = tmp_path / "vit-b-16-random.pt"
    torch.save(model.state_dict(), weights)
    del model
    out = tmp_path / "out"
    code = main(["run", "--method", "lora", "--scenario", "mtil", "--backbone", "ViT-B-16", "--pretrained",
                 str(weights), "--data-root", str(root), "--set", "tasks=[EuroSAT,MNIST]", "--set", "iterations=2",
                 "--set", "batch_size=2", "--set", "eval_batch_size=4", "--set", "rank=2", "--device", "cpu",
                 "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "mtil" / "lora" / "seed0.json").read_text())
    assert res["status"] == "finished" and res["tasks"] == ["EuroSAT", "MNIST"]
    assert res["backbone"]["name"] == "ViT-B-16" and res["backbone"]["pretrained"] == "file:vit-b-16-random.pt"
    assert res["test_sizes"] == [2, 3] and len(res["matrix"]) == 2
    assert all(v is not None and 0 <= v <= 100 for row in res["matrix"] for v in row)
    assert res["per_task"][0]["trainable_params"] > 0
    assert res["metrics"] is not None
    weights.unlink()  # 600 MB
    print(f"ViT-B-16 smoke: {time.perf_counter() - t0:.0f} s")


# --- damaged files -------------------------------------------------------------------------------------------


def test_a_flipped_byte_in_the_preprocessed_cache_is_detected_and_rebuilt(mini, tiny_backbone, tmp_path,
                                                                           monkeypatch, capsys):
    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    plain = build("mtil", root, tiny_backbone, tasks=["Food"], cache_preprocessed=False)
    build("mtil", root, tiny_backbone, tasks=["Food"])
    [test_file] = (tmp_path / "cache" / "preprocessed").glob("Food-test-*.npy")
    data = bytearray(test_file.read_bytes())
    data[-5] ^= 0xFF  # one pixel value of the last image
    test_file.write_bytes(bytes(data))
    stale = test_file.with_name(test_file.name + ".999999999.tmp")  # left by a killed cache write
    stale.write_bytes(b"partial")
    capsys.readouterr()
    rebuilt = build("mtil", root, tiny_backbone, tasks=["Food"])
    assert f"preprocessed cache {test_file} is damaged" in capsys.readouterr().err
    assert not stale.exists()
    for (x, y), (x0, y0) in zip(items(rebuilt.tasks[0].test), items(plain.tasks[0].test), strict=True):
        assert y == y0 and torch.equal(x, x0)  # the rebuilt file, not the damaged one


def test_a_truncated_image_is_named_in_one_line(tmp_path):
    root = tmp_path / "data"
    fx.make_all(root)
    victim = sorted((root / "food-101" / "images").rglob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # a truncated JPEG
    from cl_bench.benchmarks.real import check_data, load_mtil_split

    [row] = check_data(["Food"], root)
    assert row.status == "found"  # the shallow check does not open images
    [row] = check_data(["Food"], root, deep=True)
    assert row.status == "wrong layout" and str(victim) in row.message and "do not decode" in row.message
    ds = [load_mtil_split("Food", root, split) for split in ("train", "test")]
    owner = next(d for d in ds if victim in d.paths)
    with pytest.raises(UserError, match="unreadable image .*" + victim.name):
        owner[owner.paths.index(victim)]


def test_xtail_on_the_miniatures(mini, tiny_backbone):
    """X-TAIL: MTIL Order I without CIFAR100, test labels shifted to index the classes of all tasks, each task
    evaluated over every task's classes; the few-shot variant trains on 16 images per class."""
    from cl_bench.protocols import TASK_AGNOSTIC

    root, _ = mini
    xtail, mtil = registry.get_scenario("xtail"), registry.get_scenario("mtil")
    assert xtail.defaults["tasks"] == [d for d in mtil.defaults["tasks"] if d != "CIFAR100"]
    assert xtail.protocol is TASK_AGNOSTIC and registry.get_scenario("xtail-fewshot").defaults["shots"] == 16
    built = build("xtail", root, tiny_backbone, tasks=["DTD", "MNIST"])
    plain = build("mtil", root, tiny_backbone, tasks=["DTD", "MNIST"])
    n_dtd = len(plain.tasks[0].eval_prompts)
    assert [y for _, y in items(built.tasks[1].test)] == [y + n_dtd for _, y in items(plain.tasks[1].test)]
    assert [y for _, y in items(built.tasks[0].test)] == [y for _, y in items(plain.tasks[0].test)]
    assert built.eval_parts(0, 0) == built.eval_parts(1, None) == [("DTD", n_dtd), ("MNIST", 10)]


def test_device_pixels_path_gives_the_same_logits(mini, tiny_backbone, tmp_path, monkeypatch):
    """The runner's GPU input path, run here on the CPU: cached datasets swapped for their uint8 form and the
    image tower normalising them gives the float path's logits exactly; float inputs still pass through."""
    import copy

    from cl_bench.classifier import CLIPClassifier
    from cl_bench.device_pixels import use_device_pixels

    root, _ = mini
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    built = build("mtil", root, tiny_backbone, tasks=["Food", "DTD"])
    floats = torch.stack([x for x, _ in items(built.tasks[0].test)])
    clf = CLIPClassifier(copy.deepcopy(tiny_backbone.model), tiny_backbone.tokenizer).eval()
    clf.set_prompts(built.tasks[0].eval_prompts)
    with torch.no_grad():
        want = clf(floats)
        assert use_device_pixels(built, clf.clip, tiny_backbone) == 4  # train and test of both tasks
        uint8 = torch.stack([x for x, _ in items(built.tasks[0].test)])
        assert uint8.dtype == torch.uint8
        assert torch.equal(clf(uint8), want)
        assert torch.equal(clf(floats), want)
        teacher = copy.deepcopy(clf.clip)  # a method's copy of the model keeps the input path
        assert torch.equal(teacher.encode_image(uint8), clf.clip.encode_image(floats))
