"""The tiny CLIPs of the embedded scenarios, ``tiny`` and ``tiny-test``: open_clip CLIPs that cl-bench
pre-trains on the micro world's image-caption pairs (once, then cached under ``$CL_BENCH_CACHE/backbones`` in
open_clip's local-dir format). Registered in the ``cl_bench.backbones`` entry-point group.

They live with the micro world because they are made from it: the cache key includes its version, and their
reference data for distillation (ZSCL) is a fresh sample of the same pre-training world.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cl_bench.backbone import (
    LOAD_ERRORS,
    RANDOM,
    Backbone,
    cache_dir,
    load_open_clip_dir,
    normalize_pixels,
    save_open_clip_dir,
)
from cl_bench.pretrain import contrastive_pretrain, loss_report
from cl_bench.stale import remove_stale_temporaries

from .micro_world import SIZE, WORLD_VERSION, pretraining_pairs

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
# Part of the cache key: bump when the pre-training code changes what it produces.
PRETRAIN_VERSION = 2
TINY_MEAN = (0.5, 0.5, 0.5)
TINY_STD = (0.25, 0.25, 0.25)


def tiny_transform():
    """Any PIL image -> the tiny input: bicubic resize and centre crop to 32 px (a no-op on micro-world images),
    then ToTensor + Normalize."""
    from torchvision import transforms as T
    from torchvision.transforms import InterpolationMode

    return T.Compose([T.Resize(SIZE, interpolation=InterpolationMode.BICUBIC), T.CenterCrop(SIZE), T.ToTensor(),
                      T.Normalize(TINY_MEAN, TINY_STD)])


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass(frozen=True)
class TinyBackbone:
    """Provider of one tiny backbone (``cl_bench.backbone.BackboneProvider``)."""

    name: str
    description: str
    mean: tuple[float, ...] = TINY_MEAN
    std: tuple[float, ...] = TINY_STD

    @property
    def config(self) -> dict:
        return TINY_CONFIGS[self.name]

    def path(self, seed: int = 0) -> Path:
        """The cache folder; its name hashes everything that decides the weights (cached copies stay valid
        exactly as long as this key is unchanged)."""
        blob = json.dumps([self.config, WORLD_VERSION, PRETRAIN_VERSION, seed], sort_keys=True).encode()
        return cache_dir() / "backbones" / f"{self.name}-{hashlib.sha256(blob).hexdigest()[:12]}"

    def pretrain(self, seed: int = 0, progress=None, path: Path | None = None) -> dict:
        """Pre-train from ``seed`` and cache; a small report (path, seconds, loss at the start and the end)."""
        import open_clip

        pc, mc = self.config["pretrain"], self.config["model"]
        path = path or self.path(seed)
        torch.manual_seed(seed)  # the model's initial weights
        t0 = time.time()
        imgs, caps = pretraining_pairs(pc["pairs"], seed)
        ctx = mc["text_cfg"]["context_length"]
        tokens = open_clip.get_tokenizer("ViT-B-16", context_length=ctx)(caps)
        model = open_clip.CLIP(**mc)
        losses = contrastive_pretrain(model, self._pixels(imgs), tokens, steps=pc["steps"],
                                      batch_size=pc["batch_size"], lr=pc["lr"], wd=pc["wd"], warmup=pc["warmup"],
                                      seed=seed, progress=progress, label=f"pre-training {self.name} backbone (once)")
        save_open_clip_dir(model, mc, path, ctx, self.mean, self.std)
        return {"path": str(path), "seconds": time.time() - t0, **loss_report(losses)}

    def load(self, pretrained: str | None = None, *, progress=None, log=None) -> Backbone:
        """The cached backbone, pre-trained first if absent or damaged. ``pretrained="none"``: the architecture
        with random weights and no pre-training (speed measurements); any other value is not used."""
        if isinstance(pretrained, str) and pretrained.lower() == RANDOM:
            import open_clip

            mc = self.config["model"]
            tok = open_clip.get_tokenizer("ViT-B-16", context_length=mc["text_cfg"]["context_length"])
            return Backbone(open_clip.CLIP(**mc).eval(), tok, tiny_transform(), self.name, RANDOM, SIZE,
                            mean=self.mean, std=self.std)
        path = self.path()
        remove_stale_temporaries(path)
        if not (path / "open_clip_pytorch_model.bin").exists():
            self.pretrain(progress=progress)
        try:
            model, tok = load_open_clip_dir(path)
        except LOAD_ERRORS as e:  # a damaged cache entry: cl-bench made it, so it can make it again
            (log or _stderr)(f"cached {self.name} backbone at {path} does not load ({type(e).__name__}); "
                             "pre-training it again")
            shutil.rmtree(path, ignore_errors=True)
            self.pretrain(progress=progress)
            model, tok = load_open_clip_dir(path)
        return Backbone(model, tok, tiny_transform(), self.name, path.name, SIZE,
                        reference_data=self.reference_data, mean=self.mean, std=self.std)

    def reference_data(self, n: int, seed: int) -> tuple[torch.Tensor, list[str]]:
        """n fresh pairs of the pre-training world drawn from ``seed``: (normalised images, captions)."""
        imgs, caps = pretraining_pairs(n, seed)
        return self._pixels(imgs), caps

    def _pixels(self, imgs) -> torch.Tensor:
        return normalize_pixels(torch.from_numpy(imgs), self.mean, self.std)


TINY = TinyBackbone("tiny", "tiny CLIP (~1.5 M parameters) pre-trained by cl-bench on the micro world")
TINY_TEST = TinyBackbone("tiny-test", "a smaller tiny CLIP for tests (seconds to pre-train)")
