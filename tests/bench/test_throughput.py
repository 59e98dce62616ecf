"""Throughput of the tiny backbone (pytest-benchmark; run with `tox -e bench`). Weights do not affect
speed, so these build the `tiny` architecture with random weights instead of pre-training it."""

import open_clip
import pytest
import torch
import torch.nn.functional as F

from cl_bench import lora, registry
from cl_bench.classifier import CLIPClassifier, encode_text

torch.set_num_threads(2)
BATCH = 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return open_clip.CLIP(**registry.backbones()["tiny"][0].config["model"])


@pytest.fixture(scope="module")
def tokenizer():
    ctx = registry.backbones()["tiny"][0].config["model"]["text_cfg"]["context_length"]
    return open_clip.get_tokenizer("ViT-B-16", context_length=ctx)


def _classifier(model, tokenizer):
    clf = CLIPClassifier(model, tokenizer)
    names = "zero one two three four five six seven eight nine".split()
    clf.set_prompts([[f'a photo of the number "{w}".'] for w in names])
    return clf


def _bench_steps(benchmark, clf, params, lr):
    """Time full optimizer steps (forward, backward, AdamW) of the classifier over ``params``."""
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))

    def step():
        opt.zero_grad()
        F.cross_entropy(clf(x), y).backward()
        opt.step()

    benchmark(step)
    benchmark.extra_info["images_per_step"] = BATCH


def test_bench_finetune_step(benchmark, model, tokenizer):
    clf = _classifier(model, tokenizer).train()
    _bench_steps(benchmark, clf, [p for n, p in model.named_parameters() if n != "logit_scale"], 1e-5)


def test_bench_lora_step(benchmark, model, tokenizer):
    import copy

    m = copy.deepcopy(model)
    for p in m.parameters():
        p.requires_grad_(False)
    ads = lora.attach(m, rank=8, alpha=16)
    _bench_steps(benchmark, _classifier(m, tokenizer).train(), lora.adapter_parameters(ads), 1e-3)


def test_bench_eval_batch(benchmark, model, tokenizer):
    clf = _classifier(model, tokenizer).eval()
    x = torch.randn(256, 3, 32, 32)

    @torch.no_grad()
    def run():
        return clf(x)

    benchmark(run)
    benchmark.extra_info["images_per_call"] = 256


@pytest.mark.parametrize("truncate", [True, False], ids=["to-longest-prompt", "full-context"])
def test_bench_text_encoding(benchmark, model, tokenizer, truncate):
    """The exact saving of encoding prompts only up to the longest one (docs/methods.md C3)."""
    tokens = tokenizer([f"a photo of a {c}." for c in range(100)])
    fn = (lambda: encode_text(model, tokens)) if truncate else (lambda: model.encode_text(tokens))
    with torch.no_grad():
        benchmark(fn)


@pytest.mark.parametrize("stat", ["mean_token_matrix", "covariance"])
def test_bench_feature_accumulation(benchmark, model, stat):
    """KeepLoRA's feature accumulation (docs/methods.md C7) in both statistic modes: time per batch of 64 images and the
    memory the statistics hold (extra_info: stat_mb), for the tiny backbone."""
    from cl_bench.attention_stats import StatAccumulator, record_attention_inputs

    x = torch.randn(64, 3, 32, 32)
    holder = {}

    @torch.no_grad()
    def run():
        acc = StatAccumulator(stat)
        with record_attention_inputs(model, acc, towers=("visual",)):
            for _ in range(2):
                model.encode_image(x)
        holder["acc"] = acc

    benchmark(run)
    benchmark.extra_info["stat_mb"] = holder["acc"].nbytes() / 2**20
