import numpy as np
import pytest

from cl_bench.benchmarks import micro_world as world
from cl_bench.benchmarks.micro import CIL_POOL, build_cil, build_mtil, cil_class_order
from cl_bench.errors import UserError


def test_world_is_deterministic_and_splits_differ():
    (a, ya), (b, yb) = world.domain_split("shapes", 3, 2, 0)
    (a2, _), (b2, _) = world.domain_split("shapes", 3, 2, 0)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert a.shape == (24, 32, 32, 3) and b.shape == (16, 32, 32, 3)
    assert list(ya[:3]) == [0, 0, 0] and ya.max() == 7
    assert not np.array_equal(a[:16], b)


def test_outline_mask_is_the_boundary():
    m = world.shape_mask("square", 16, 16, 8)
    o = world.outline(m)
    assert o.sum() < m.sum() and (o & ~m).sum() == 0
    assert not o[16, 16]  # interior removed


def test_every_domain_renders_every_class():
    for name, d in world.DOMAINS.items():
        (x, y), _ = world.domain_split(name, 1, 1, 0)
        assert len(x) == len(d.classnames) and sorted(set(y.tolist())) == list(range(len(d.classnames)))
        assert x.dtype == np.uint8


def test_pretraining_captions_never_mention_new_knowledge():
    _, caps = world.pretraining_pairs(300, 0)
    text = " ".join(caps)
    assert not any(n in text for n in world.GLYPH_NAMES)
    assert not any(f" {n} " in f" {text} " for n in ("zero", "seven", "number"))
    assert any(c in text for c in world.COLOURS) and any(s in text for s in world.SHAPES)


def test_glyphs_are_distinct():
    g = world.glyph_bitmaps()
    assert len(g) == len(world.GLYPH_NAMES)
    for i in range(len(g)):
        for j in range(i):
            assert (g[i] != g[j]).sum() >= 7


def test_mtil_micro_tasks(tiny_backbone):
    b = build_mtil({"tasks": ["digits", "colours"], "train_per_class": 2, "test_per_class": 3}, tiny_backbone, 0)
    assert [t.name for t in b.tasks] == ["digits", "colours"]
    assert len(b.tasks[0].train) == 20 and len(b.tasks[1].test) == 24
    x, y = b.tasks[0].train[0]
    assert tuple(x.shape) == (3, 32, 32)
    assert b.tasks[0].train_prompts[7] == ['a photo of the number "seven".']
    assert b.evaluated(0) == [0, 1] and b.eval_prompts(1, 0) == b.tasks[1].eval_prompts
    with pytest.raises(UserError, match="valid:"):
        build_mtil({"tasks": ["nope"], "train_per_class": 1, "test_per_class": 1}, tiny_backbone, 0)


def test_cil_micro_steps_and_labels(tiny_backbone):
    b = build_cil({"steps": 5, "train_per_class": 2, "test_per_class": 2}, tiny_backbone, 0)
    order = cil_class_order()
    assert sorted(order) == list(range(len(CIL_POOL)))
    assert len(b.tasks) == 5
    t1 = b.tasks[1]
    assert sorted(set(t1.train.targets)) == list(range(6))  # local labels for training
    assert sorted(set(t1.test.targets)) == list(range(6, 12))  # global positions for evaluation
    fam, name = CIL_POOL[order[6]]
    assert name in t1.eval_prompts[0][0]
    assert len(b.eval_prompts(0, 1)) == 12 and b.evaluated(1) == [0, 1]
    assert len(b.eval_prompts(0, None)) == 30 and b.evaluated(None) == [0, 1, 2, 3, 4]
    with pytest.raises(UserError, match="steps must divide"):
        build_cil({"steps": 4, "train_per_class": 1, "test_per_class": 1}, tiny_backbone, 0)


def test_outlines_are_a_shift_of_known_shapes():
    assert set(world.DOMAINS["outlines"].classnames) < set(world.SHAPES)
    (x, _), _ = world.domain_split("outlines", 2, 1, 0)
    (xs, _), _ = world.domain_split("shapes", 2, 1, 0)
    bright = lambda im: (im.max(-1) > 150).mean()  # noqa: E731 - fraction of painted pixels
    assert np.mean([bright(i) for i in x]) < np.mean([bright(i) for i in xs])  # contours, not filled shapes


def test_validation_split_differs_from_test():
    _, (te, _) = world.domain_split("glyphs", 1, 3, 0, "test")
    _, (va, _) = world.domain_split("glyphs", 1, 3, 0, "val")
    assert not np.array_equal(te, va)
    with pytest.raises(ValueError):
        world.domain_split("glyphs", 1, 3, 0, "train")


@pytest.mark.parametrize("domain", ["digits", "glyphs"])
def test_new_knowledge_is_learnable(domain, tmp_path):
    """World v1's failure: fine-tuning barely learned its new domains. Fine-tuning the tiny-test backbone on
    a new-knowledge domain (names it never read, zero-shot near chance) must clearly beat chance."""
    from cl_bench import registry
    from cl_bench.config import make_config, parse_set
    from cl_bench.runner import Run

    cfg = make_config(method=registry.get_method("finetune"), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(tmp_path),
                      overrides=parse_set([f"tasks=[{domain}]", "train_per_class=40", "test_per_class=10",
                                           "iterations=150", "batch_size=32", "lr=3e-3", "label_smoothing=0.0"]))
    res = Run(cfg, log=lambda *a: None).execute()
    chance = 100 / len(world.DOMAINS[domain].classnames)
    zero_shot, learned = res["zero_shot"][0], res["matrix"][0][0]
    assert zero_shot < 1.5 * chance, zero_shot
    # tiny-test (width 32, 2 layers) is far weaker than tiny, which reaches 90-99 % here (docs/micro-world.md);
    # on 100 test images, twice chance and 10 points over zero-shot is far outside noise.
    assert learned >= 2 * chance and learned >= zero_shot + 10, (zero_shot, learned)
