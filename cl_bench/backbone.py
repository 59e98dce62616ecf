"""Backbones: an open_clip model, its tokenizer and its image transform.

Real runs use an open_clip architecture with pre-trained weights from open_clip's cache or a local file
(never the network). The embedded scenarios use a tiny CLIP that cl-bench pre-trains itself and caches
in open_clip's ``local-dir:`` format.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .stale import remove_stale_temporaries

TINY_CONFIGS = {
    # ~1.5 M parameters outside the token embedding; pre-trains in about 6-7 minutes on 2 cores. Patch 8
    # (16 tokens) trains 2.5x faster than world v1's patch 4, which buys 3x more pre-training steps and a
    # downstream budget in which new domains are learned (docs/micro-world.md).
    "tiny": dict(
        model=dict(embed_dim=128, quick_gelu=False,
                   vision_cfg=dict(image_size=32, layers=4, width=128, patch_size=8, head_width=32),
                   text_cfg=dict(context_length=24, vocab_size=49408, width=128, heads=4, layers=3)),
        pretrain=dict(pairs=40000, steps=1500, batch_size=128, lr=1e-3, wd=0.1, warmup=100),
    ),
    # For tests: seconds to pre-train, still a real open_clip CLIP with both towers.
    "tiny-test": dict(
        model=dict(embed_dim=32, quick_gelu=True,
                   vision_cfg=dict(image_size=32, layers=2, width=32, patch_size=8, head_width=16),
                   text_cfg=dict(context_length=24, vocab_size=49408, width=32, heads=2, layers=2)),
        pretrain=dict(pairs=4000, steps=150, batch_size=64, lr=3e-3, wd=0.1, warmup=15),
    ),
}
# Part of the tiny backbones' cache key: bump when the pre-training code changes what it produces.
PRETRAIN_VERSION = 2
RANDOM = "none"  # the pretrained value that asks for random weights
TINY_MEAN = (0.5, 0.5, 0.5)
TINY_STD = (0.25, 0.25, 0.25)


@dataclass
class Backbone:
    model: nn.Module  # open_clip CLIP
    tokenizer: object  # callable: list[str] -> LongTensor (N, context)
    transform: object  # PIL image -> tensor
    name: str
    pretrained: str  # tag or file identity recorded in results
    image_size: int


def cache_dir() -> Path:
    return Path(os.environ.get("CL_BENCH_CACHE", Path.home() / ".cache" / "cl-bench"))


def _tiny_key(name: str, seed: int) -> str:
    from cl_bench.benchmarks.micro_world import WORLD_VERSION

    blob = json.dumps([TINY_CONFIGS[name], WORLD_VERSION, PRETRAIN_VERSION, seed], sort_keys=True).encode()
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:12]}"


def tiny_path(name: str = "tiny", seed: int = 0) -> Path:
    return cache_dir() / "backbones" / _tiny_key(name, seed)


def tiny_transform():
    from torchvision import transforms as T

    return T.Compose([T.ToTensor(), T.Normalize(TINY_MEAN, TINY_STD)])


def _load_local_dir(path: Path):
    import open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{path}")
    return model, open_clip.get_tokenizer(f"local-dir:{path}")


# What a truncated or garbage weights/config file raises inside torch.load / json / open_clip.
_LOAD_ERRORS = (RuntimeError, ValueError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError,
                zipfile.BadZipFile)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_backbone(name: str = "tiny", pretrained: str | None = None, *, progress=None,
                  log=_stderr) -> Backbone:
    """Build a backbone. ``tiny``/``tiny-test`` are pre-trained (once, cached) if needed; any other name is
    an open_clip architecture (e.g. ViT-B-16) with ``pretrained`` an open_clip tag (openai, from the cache)
    or a path to a weights file. ``pretrained="none"`` gives any backbone random weights (no download, no
    pre-training), for measuring speed."""
    import open_clip

    random_weights = isinstance(pretrained, str) and pretrained.lower() == RANDOM
    if name in TINY_CONFIGS and random_weights:  # the architecture only: no pre-training (speed measurements)
        ctx = TINY_CONFIGS[name]["model"]["text_cfg"]["context_length"]
        model = open_clip.CLIP(**TINY_CONFIGS[name]["model"]).eval()
        return Backbone(model, open_clip.get_tokenizer("ViT-B-16", context_length=ctx), tiny_transform(), name,
                        RANDOM, 32)
    if name in TINY_CONFIGS:
        path = tiny_path(name)
        remove_stale_temporaries(path)
        if not (path / "open_clip_pytorch_model.bin").exists():
            from .pretrain import pretrain_tiny

            pretrain_tiny(name, progress=progress)
        try:
            model, tok = _load_local_dir(path)
        except _LOAD_ERRORS as e:  # a damaged cache entry: cl-bench made it, so it can make it again
            log(f"cached {name} backbone at {path} does not load ({type(e).__name__}); pre-training it again")
            shutil.rmtree(path, ignore_errors=True)
            from .pretrain import pretrain_tiny

            pretrain_tiny(name, progress=progress)
            model, tok = _load_local_dir(path)
        model.eval()
        return Backbone(model, tok, tiny_transform(), name, path.name, 32)

    if name not in open_clip.list_models():
        raise UserError(f"unknown backbone {name!r}: use tiny, tiny-test or an open_clip model name such as "
                        "ViT-B-16 (see open_clip.list_models())")
    pretrained = pretrained or "openai"
    if random_weights:
        ident = RANDOM
    elif os.path.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors")):
        if not Path(pretrained).is_file():
            raise UserError(f"weights file not found: {pretrained} (pass --pretrained with an existing "
                            "open_clip/OpenAI checkpoint file)")
        ident = f"file:{Path(pretrained).name}"
    else:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise UserError(f"unknown pretrained tag {pretrained!r} for {name}; valid: {', '.join(tags)} "
                            "or a path to a weights file")
        ident = pretrained
    # QuickGELU: open_clip's openai loader sets it for OpenAI weights; a file of OpenAI weights needs it too.
    kwargs = {"force_quick_gelu": True} if pretrained == "openai" or "openai" in pretrained.lower() else {}
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None if random_weights
                                                                     else pretrained, **kwargs)
    except _LOAD_ERRORS as e:  # no network (hub download attempt failed), or a damaged file
        raise UserError(_weights_hint(name, pretrained, e)) from None
    model.eval()
    return Backbone(model, open_clip.get_tokenizer(name), preprocess, name, ident,
                    model.visual.image_size[0] if isinstance(model.visual.image_size, tuple)
                    else model.visual.image_size)


def _weights_hint(name, pretrained, err) -> str:
    hf = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    return (f"could not load {name} weights {pretrained!r} ({type(err).__name__}: missing without network, or a "
            f"damaged file): put intact weights in open_clip's cache ({hf}/hub) or pass --pretrained "
            "/path/to/weights.pt")


def save_open_clip_dir(model: nn.Module, model_cfg: dict, path: Path, context_length: int) -> None:
    """Write a model in open_clip's local-dir format (config + weights), atomically: a temporary folder named
    for this process, renamed into place (two runs pre-training at once each write their own)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = {"model_cfg": model_cfg,
           "preprocess_cfg": {"mean": list(TINY_MEAN), "std": list(TINY_STD)},
           "tokenizer_cfg": {"context_length": context_length}}
    (tmp / "open_clip_config.json").write_text(json.dumps(cfg, indent=1))
    torch.save(model.state_dict(), tmp / "open_clip_pytorch_model.bin")
    if path.exists():
        shutil.rmtree(path)
    try:
        tmp.rename(path)
    except OSError:  # another process put the same (deterministic) model in place first
        shutil.rmtree(tmp, ignore_errors=True)
