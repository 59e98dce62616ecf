"""Backbones: an open_clip model, its tokenizer and its image preprocessing.

Any open_clip architecture loads here, with pre-trained weights from open_clip's cache or a local file (never
the network). Other backbones come from providers registered in the entry-point group ``cl_bench.backbones``,
the way methods and scenarios are: the tiny CLIPs that cl-bench pre-trains on the micro world are provided by
cl_bench/benchmarks/tiny_backbones.py.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from .errors import UserError

RANDOM = "none"  # the ``pretrained`` value that asks for random weights

# (n, seed) -> (float images (n, 3, S, S) ready for the model, n captions): a sample of the data a backbone was
# pre-trained on, for methods that distil on reference data (ZSCL).
ReferenceData = Callable[[int, int], tuple[torch.Tensor, list[str]]]


@dataclass
class Backbone:
    model: nn.Module  # open_clip CLIP
    tokenizer: object  # callable: list[str] -> LongTensor (N, context)
    transform: object  # any PIL image -> float tensor (3, image_size, image_size)
    name: str
    pretrained: str  # tag or file identity recorded in results
    image_size: int
    reference_data: ReferenceData | None = None  # None: the backbone brings no pre-training data
    # The normalisation ending ``transform``; found in it when not given.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.mean is None or self.std is None:
            norm = _normalize_step(self.transform)
            if norm is not None:
                self.mean, self.std = tuple(norm.mean), tuple(norm.std)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels (N, S, S, 3) already at the input size -> the model's float input, on their device.
        The batched form of ``transform`` for images that need no resizing (the micro world, the pixel cache)."""
        if self.mean is None or self.std is None:
            raise ValueError(f"backbone {self.name}: its transform has no Normalize step, so mean/std are unknown")
        return normalize_pixels(pixels, self.mean, self.std)


def normalize_pixels(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W), ``(x / 255 - mean) / std``. The same float32 operations as
    torchvision's ToTensor + Normalize, so on the CPU a batch equals the per-image transform bit for bit."""
    x = pixels.permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def _normalize_step(transform):
    from torchvision import transforms as T

    steps = getattr(transform, "transforms", [transform])
    return next((s for s in steps if isinstance(s, T.Normalize)), None)


class BackboneProvider(Protocol):
    """What the ``cl_bench.backbones`` entry points name: one backbone each."""

    description: str

    def load(self, pretrained: str | None, *, progress=None, log: Callable[[str], None]) -> Backbone: ...


def cache_dir() -> Path:
    return Path(os.environ.get("CL_BENCH_CACHE", Path.home() / ".cache" / "cl-bench"))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# What a truncated or garbage weights/config file raises inside torch.load / json / open_clip.
LOAD_ERRORS = (RuntimeError, ValueError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError,
               zipfile.BadZipFile)


def load_backbone(name: str = "tiny", pretrained: str | None = None, *, progress=None,
                  log=_stderr) -> Backbone:
    """Build a backbone: a registered one (``tiny``/``tiny-test``, pre-trained once and cached) or an open_clip
    architecture (e.g. ViT-B-16) with ``pretrained`` an open_clip tag (openai, from the cache) or a path to a
    weights file."""
    from .registry import backbones

    provided = backbones()
    if name in provided:
        return provided[name][0].load(pretrained, progress=progress, log=log)
    return _load_open_clip(name, pretrained, sorted(provided))


def provider(name: str):
    """The registered provider of a backbone (e.g. for ``cl-bench pretrain-tiny``)."""
    from .registry import backbones

    provided = backbones()
    if name not in provided:
        raise UserError(f"{name!r} is not a registered backbone; registered: {', '.join(sorted(provided))}")
    return provided[name][0]


def tiny_path(name: str = "tiny", seed: int = 0) -> Path:
    """Where a backbone that cl-bench pre-trains itself is cached."""
    return provider(name).path(seed)


def _load_open_clip(name: str, pretrained: str | None, registered: list[str]) -> Backbone:
    import open_clip

    if name not in open_clip.list_models():
        raise UserError(f"unknown backbone {name!r}: use {', '.join(registered) or 'tiny, tiny-test'} or an open_clip "
                        "model name such as ViT-B-16 (see open_clip.list_models()); after updating cl-bench, "
                        "reinstall it (pip install -e .) so its backbones are registered")
    pretrained = pretrained or "openai"
    if pretrained.lower() == RANDOM:  # the architecture with random weights: no download (speed measurements)
        model = open_clip.create_model(name).eval()
        preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
        size = model.visual.image_size
        return Backbone(model, open_clip.get_tokenizer(name), preprocess, name, RANDOM,
                        size[0] if isinstance(size, tuple) else size)
    if os.path.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors")):
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
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, **kwargs)
    except LOAD_ERRORS as e:  # no network (hub download attempt failed), or a damaged file
        raise UserError(_weights_hint(name, pretrained, e)) from None
    model.eval()
    size = model.visual.image_size
    return Backbone(model, open_clip.get_tokenizer(name), preprocess, name, ident,
                    size[0] if isinstance(size, tuple) else size)


def _weights_hint(name, pretrained, err) -> str:
    hf = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    return (f"could not load {name} weights {pretrained!r} ({type(err).__name__}: missing without network, or a "
            f"damaged file): put intact weights in open_clip's cache ({hf}/hub) or pass --pretrained "
            "/path/to/weights.pt")


def load_open_clip_dir(path: Path):
    """(model in eval mode, tokenizer) from a folder in open_clip's local-dir format."""
    import open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{path}")
    return model.eval(), open_clip.get_tokenizer(f"local-dir:{path}")


def save_open_clip_dir(model: nn.Module, model_cfg: dict, path: Path, context_length: int, mean, std) -> None:
    """Write a model in open_clip's local-dir format (config + weights), atomically: a temporary folder named
    for this process, renamed into place (two runs pre-training at once each write their own)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = {"model_cfg": model_cfg,
           "preprocess_cfg": {"mean": list(mean), "std": list(std)},
           "tokenizer_cfg": {"context_length": context_length}}
    (tmp / "open_clip_config.json").write_text(json.dumps(cfg, indent=1))
    torch.save(model.state_dict(), tmp / "open_clip_pytorch_model.bin")
    if path.exists():
        shutil.rmtree(path)
    try:
        tmp.rename(path)
    except OSError:  # another process put the same (deterministic) model in place first
        shutil.rmtree(tmp, ignore_errors=True)
