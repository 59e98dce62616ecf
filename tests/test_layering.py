"""Layering: the core (cl_bench outside cl_bench/benchmarks) reaches benchmark code only through entry points
(backbone providers, scenarios); the tiny backbones keep their cache keys, weights recipe and reference data."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cl_bench
from cl_bench import registry
from cl_bench.backbone import load_backbone, normalize_pixels, tiny_path
from cl_bench.benchmarks import micro_world
from cl_bench.errors import UserError

PACKAGE = Path(cl_bench.__file__).parent


def _imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute names of every module a file under ``root`` (the cl_bench folder) imports, at any depth
    (function-level imports included)."""
    package = ".".join(("cl_bench", *path.relative_to(root).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


def test_the_core_does_not_import_benchmarks():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("benchmarks/"):
            continue
        bad = sorted(m for m in _imported_modules(path) if m == "cl_bench.benchmarks"
                     or m.startswith("cl_bench.benchmarks."))
        if bad:
            offenders[rel] = bad
    assert offenders == {}


def test_the_scan_sees_relative_and_nested_imports(tmp_path):
    (tmp_path / "methods").mkdir()
    src = tmp_path / "methods" / "m.py"
    src.write_text("from .. import registry\n\n\ndef f():\n    from ..benchmarks import micro_world\n"
                   "    import cl_bench.benchmarks.micro\n")
    found = _imported_modules(src, tmp_path)
    assert {"cl_bench.benchmarks.micro_world", "cl_bench.benchmarks.micro", "cl_bench.registry"} <= found


def test_tiny_cache_keys_are_unchanged():
    # Cached backbones under $CL_BENCH_CACHE stay valid only while these names stay the same.
    assert tiny_path("tiny").name == "tiny-4c134af7a46c"
    assert tiny_path("tiny-test").name == "tiny-test-d083e28f04cc"
    assert tiny_path("tiny", 1).name == "tiny-fe9a6b21aded"


def test_backbones_are_registered_through_entry_points():
    found = registry.backbones()
    assert {"tiny", "tiny-test"} <= set(found)
    assert all(source == "built-in" for name, (_, source) in found.items() if name.startswith("tiny"))
    with pytest.raises(UserError, match="unknown backbone 'nope': use tiny, tiny-test or an open_clip"):
        load_backbone("nope")


def test_tiny_transform_and_batch_normalisation_agree(tiny_backbone):
    imgs, _ = micro_world.pretraining_pairs(6, seed=3)
    batch = tiny_backbone.normalize(torch.from_numpy(imgs))
    one_by_one = torch.stack([tiny_backbone.transform(Image.fromarray(im)) for im in imgs])
    assert batch.dtype == torch.float32 and torch.equal(batch, one_by_one)
    # Any image size: the transform brings it to the input size.
    assert tiny_backbone.transform(Image.new("RGB", (50, 40))).shape == (3, 32, 32)
    assert (tiny_backbone.mean, tiny_backbone.std) == ((0.5,) * 3, (0.25,) * 3)


def test_reference_data_is_a_fresh_sample_of_the_pretraining_world(tiny_backbone):
    images, captions = tiny_backbone.reference_data(40, 10_000)
    raw, expected = micro_world.pretraining_pairs(40, 10_000)
    assert captions == expected and images.shape == (40, 3, 32, 32)
    want = (torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert torch.equal(images, want)
    assert not np.array_equal(raw, micro_world.pretraining_pairs(40, 10_001)[0])


def test_normalize_pixels_runs_on_the_pixels_device():
    x = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    y = normalize_pixels(x, (0.0, 0.5, 1.0), (1.0, 0.5, 0.25))
    assert y.shape == (2, 3, 4, 4) and y.device == x.device
    assert torch.equal(y[:, 2], (x[..., 2].float() / 255 - 1.0) / 0.25)


def test_scenarios_declare_their_data(monkeypatch):
    monkeypatch.delenv("CL_BENCH_DATA", raising=False)
    assert registry.get_scenario("mtil-micro").data is None
    mtil = registry.get_scenario("mtil").data
    assert mtil.datasets[0] == "Aircraft" and len(mtil.datasets) == 11
    assert registry.get_scenario("cil-cifar100").data.datasets == ("CIFAR100",)
    with pytest.raises(UserError, match="no data root"):
        mtil.resolve_root("")
