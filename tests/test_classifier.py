import torch

from cl_bench.classifier import CLIPClassifier, class_prompts, encode_text


def test_truncated_text_encoding_is_exact(tiny_backbone):
    clip, tok = tiny_backbone.model, tiny_backbone.tokenizer
    tokens = tok(["a photo of a red circle.", "a cross.", "an image of a small blue ring on a dotted background."])
    with torch.no_grad():
        ref = clip.encode_text(tokens)
        ours = encode_text(clip, tokens)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_logits_are_scaled_cosines(tiny_backbone):
    clf = CLIPClassifier(tiny_backbone.model, tiny_backbone.tokenizer).eval()
    clf.set_prompts(class_prompts(["red", "blue"], ["a photo of a {} shape."]))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = clf(x)
        img = torch.nn.functional.normalize(clf.clip.encode_image(x), dim=-1)
        txt = torch.nn.functional.normalize(clf.clip.encode_text(clf.tokens), dim=-1)
        expected = clf.clip.logit_scale.exp() * img @ txt.T
    assert torch.allclose(logits, expected, atol=1e-4)


def test_prompt_ensemble_averages_normalised_embeddings(tiny_backbone):
    clf = CLIPClassifier(tiny_backbone.model, tiny_backbone.tokenizer).eval()
    templates = ["a photo of a {}.", "a {} shape."]
    clf.set_prompts(class_prompts(["circle", "square"], templates))
    with torch.no_grad():
        feats = clf.text_features()
        single = torch.nn.functional.normalize(encode_text(clf.clip, clf.tokens), dim=-1)
    mean0 = torch.nn.functional.normalize(single[:2].mean(0), dim=-1)
    assert feats.shape == (2, single.shape[1])
    assert torch.allclose(feats[0], mean0, atol=1e-6)


def test_text_cache_follows_trainability(tiny_backbone):
    import copy

    clf = CLIPClassifier(copy.deepcopy(tiny_backbone.model), tiny_backbone.tokenizer)
    for p in clf.parameters():
        p.requires_grad_(False)
    clf.set_prompts([["a red shape."], ["a blue shape."]])
    clf.train()
    a = clf.text_features()
    assert clf.text_features() is a  # frozen text tower: cached even in training
    clf.clip.ln_final.weight.requires_grad_(True)
    b = clf.text_features()
    assert b is not a and b.requires_grad  # trainable text tower: fresh, with gradients
    clf.invalidate()
    assert clf._cache is None


def test_text_cache_follows_weight_changes(tiny_backbone):
    """No method invalidates by hand: an in-place change of a text weight (an optimizer step, a merge), an
    attached adapter, or a restored state refreshes the cache; a change to the image tower keeps it."""
    import copy

    from cl_bench import lora

    clf = CLIPClassifier(copy.deepcopy(tiny_backbone.model), tiny_backbone.tokenizer)
    for p in clf.parameters():
        p.requires_grad_(False)
    clf.set_prompts([["a red shape."], ["a blue shape."]])
    clf.eval()
    a = clf.text_features()
    with torch.no_grad():
        clf.clip.visual.ln_post.weight.mul_(2.0)
    assert clf.text_features() is a  # image tower changed: text features still valid
    with torch.no_grad():
        clf.clip.ln_final.weight.mul_(1.5)
    b = clf.text_features()
    assert b is not a and not torch.allclose(a, b)
    adapters = lora.attach(clf.clip, rank=2, alpha=2.0, targets=["q"], init="zeros")
    c = clf.text_features()
    assert c is not b  # a new parameter in the text tower
    with torch.no_grad():
        for ad in adapters.values():
            ad.A.normal_()
            ad.B.normal_()
    d = clf.text_features()
    assert not torch.allclose(c, d)
    lora.merge(clf.clip)
    assert torch.allclose(clf.text_features(), d, atol=1e-5)  # merged: same function, recomputed
    state = copy.deepcopy(clf.clip.state_dict())
    with torch.no_grad():
        clf.clip.ln_final.bias.add_(1.0)
    e = clf.text_features()
    clf.clip.load_state_dict(state)
    assert torch.allclose(clf.text_features(), d, atol=1e-5) and not torch.allclose(e, d)
