import copy

import pytest
import torch

from cl_bench import lora
from cl_bench.lora import attention_modules


def _images(n=4, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _randomise(adapters, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in adapters.values():
            a.A.copy_(torch.randn(a.A.shape, generator=g) * 0.1)
            a.B.copy_(torch.randn(a.B.shape, generator=g) * 0.1)


def test_attach_covers_qkvo_of_both_towers(fresh_clip):
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    n_blocks = len(list(attention_modules(fresh_clip)))
    assert len(ads) == 4 * n_blocks
    assert {k.split(".")[-1] for k in ads} == {"q", "k", "v", "o"}
    assert {k.split(".")[0] for k in ads} == {"visual", "text"}
    assert all(a.scale == 2.0 for a in ads.values())


def test_kaiming_init_leaves_function_unchanged(fresh_clip):
    x = _images()
    ref = fresh_clip.encode_image(x)
    lora.attach(fresh_clip, rank=4, alpha=8)
    assert torch.allclose(fresh_clip.encode_image(x), ref, atol=1e-6)


def test_adapter_changes_exactly_its_block(fresh_clip):
    ads = lora.attach(fresh_clip, rank=2, alpha=2, targets=["k"], towers=["visual"])
    a = ads["visual.0.k"]
    _randomise({"k": a})
    mha = next(m for _, _, _, m in attention_modules(fresh_clip, ["visual"]))
    W = mha.in_proj_weight
    base = mha.parametrizations.in_proj_weight.original
    d = mha.embed_dim
    assert torch.equal(W[:d], base[:d]) and torch.equal(W[2 * d:], base[2 * d:])
    assert torch.allclose(W[d:2 * d] - base[d:2 * d], (a.A @ a.B).T * a.scale, atol=1e-7)


def test_merge_equals_adapter_on_model(fresh_clip):
    x, text = _images(), torch.randint(1, 1000, (3, 24))
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    _randomise(ads)
    with torch.no_grad():
        on_img, on_txt = fresh_clip.encode_image(x), fresh_clip.encode_text(text)
    params_before = {id(p) for p in fresh_clip.parameters()}
    lora.merge(fresh_clip)
    assert not any(".parametrizations." in k for k in fresh_clip.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh_clip.encode_image(x), on_img, atol=1e-5)
        assert torch.allclose(fresh_clip.encode_text(text), on_txt, atol=1e-5)
    # the base Parameter objects survive the merge (optimizers and hooks keep pointing at them)
    assert {id(p) for p in fresh_clip.parameters()} <= params_before


def test_discard_restores_the_original(fresh_clip):
    x = _images()
    ref = fresh_clip.encode_image(x)
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    _randomise(ads)
    assert not torch.allclose(fresh_clip.encode_image(x), ref, atol=1e-4)
    lora.discard(fresh_clip)
    assert torch.allclose(fresh_clip.encode_image(x), ref, atol=1e-6)


def test_add_to_base_then_unmerge_roundtrip(fresh_clip):
    """W + delta - delta == W: subtracting an initial delta (docs/methods.md KL6) keeps the function."""
    x = _images()
    ref = fresh_clip.encode_image(x)
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    _randomise(ads)
    for a in ads.values():
        a.add_to_base(-1.0)  # base W - delta; effective W - delta + delta = W
    assert torch.allclose(fresh_clip.encode_image(x), ref, atol=1e-5)


def test_plain_state_dict_loads_into_fresh_model(fresh_clip):
    pristine = copy.deepcopy(fresh_clip)
    x = _images()
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    _randomise(ads)
    with torch.no_grad():
        out = fresh_clip.encode_image(x)
    pristine.load_state_dict(lora.plain_state_dict(fresh_clip))
    with torch.no_grad():
        assert torch.allclose(pristine.encode_image(x), out, atol=1e-5)


def test_gradients_reach_only_adapters(fresh_clip):
    for p in fresh_clip.parameters():
        p.requires_grad_(False)
    ads = lora.attach(fresh_clip, rank=4, alpha=8)
    for p in lora.adapter_parameters(ads):
        p.requires_grad_(True)
    fresh_clip.encode_image(_images()).sum().backward()
    # B starts at 0, so only B receives a gradient at step 0 (dL/dA = s * x^T (dL/dy) B^T = 0)
    assert all(a.B.grad is not None and a.B.grad.abs().sum() > 0 for k, a in ads.items() if k.startswith("visual"))
    assert all(a.A.grad is None or a.A.grad.abs().sum() == 0 for a in ads.values())


def test_unknown_target_rejected(fresh_clip):
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        lora.attach(fresh_clip, rank=2, alpha=2, targets=["x"])
