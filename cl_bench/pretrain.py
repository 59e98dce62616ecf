"""Contrastive pre-training of an open_clip CLIP on image-caption pairs: how cl-bench makes the tiny
backbones of the micro world (cl_bench/benchmarks/tiny_backbones.py supplies the pairs and the recipe).

Deterministic from a seed: the batches come from a generator seeded with it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .backbone import provider
from .classifier import encode_text


def contrastive_pretrain(model, images: torch.Tensor, tokens: torch.Tensor, *, steps: int, batch_size: int,
                         lr: float, wd: float, warmup: int, seed: int, progress=None, label: str = "") -> list[float]:
    """Train ``model`` in place on (normalised images, caption tokens) pairs; returns the loss per step.
    AdamW (no decay on embeddings, biases and norms), linear warm-up then cosine decay."""
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0}], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warmup if s < warmup else
                                              0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))))
    g = torch.Generator().manual_seed(seed)
    losses = []
    task = progress.add_task(label, total=steps) if progress else None
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=g)
        img_f = F.normalize(model.encode_image(images[idx]), dim=-1)
        txt_f = F.normalize(encode_text(model, tokens[idx]), dim=-1)
        logits = model.logit_scale.exp() * img_f @ txt_f.T
        # Captions repeat across the batch (same attributes); treat identical captions as positives.
        same = (tokens[idx][:, None, :] == tokens[idx][None, :, :]).all(-1).float()
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if task is not None:
            progress.update(task, advance=1)
    model.eval()
    return losses


def loss_report(losses: list[float]) -> dict:
    return {"loss_first": float(np.mean(losses[:20])), "loss_last": float(np.mean(losses[-20:]))}


def pretrain_tiny(name: str = "tiny", seed: int = 0, progress=None, path=None) -> dict:
    """Pre-train and cache a registered backbone that cl-bench makes itself; a small report (path, seconds,
    loss at the start and the end)."""
    return provider(name).pretrain(seed, progress=progress, path=path)
