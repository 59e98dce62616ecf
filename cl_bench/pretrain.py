"""Contrastive pre-training of the tiny CLIP on the micro world's image-caption pairs.

Deterministic from a seed, cached under the cache dir keyed by model config, world version and seed, so
the first micro run pays a few minutes once and every later run loads it instantly.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .backbone import TINY_CONFIGS, TINY_MEAN, TINY_STD, save_open_clip_dir, tiny_path
from .classifier import encode_text


def images_to_tensor(imgs: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float N x 3 x H x W (the tiny backbone's transform, batched)."""
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(TINY_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TINY_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def pretrain_tiny(name: str = "tiny", seed: int = 0, progress=None, path=None) -> dict:
    """Pre-train and cache ``name``; returns a small report (loss curve ends, wall time)."""
    import open_clip

    from cl_bench.benchmarks.micro_world import pretraining_pairs

    cfg = TINY_CONFIGS[name]
    pc, mc = cfg["pretrain"], cfg["model"]
    path = path or tiny_path(name, seed)
    torch.manual_seed(seed)
    t0 = time.time()
    imgs, caps = pretraining_pairs(pc["pairs"], seed)
    ctx = mc["text_cfg"]["context_length"]
    tok = open_clip.get_tokenizer("ViT-B-16", context_length=ctx)
    x_all, t_all = images_to_tensor(imgs), tok(caps)
    model = open_clip.CLIP(**mc)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": pc["wd"]}, {"params": rest, "weight_decay": 0}],
                            lr=pc["lr"])
    steps, warm = pc["steps"], pc["warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    g = torch.Generator().manual_seed(seed)
    losses = []
    task = progress.add_task(f"pre-training {name} backbone (once)", total=steps) if progress else None
    for _ in range(steps):
        idx = torch.randint(len(x_all), (pc["batch_size"],), generator=g)
        img_f = F.normalize(model.encode_image(x_all[idx]), dim=-1)
        txt_f = F.normalize(encode_text(model, t_all[idx]), dim=-1)
        logits = model.logit_scale.exp() * img_f @ txt_f.T
        # Captions repeat across the batch (same attributes); treat identical captions as positives.
        same = (t_all[idx][:, None, :] == t_all[idx][None, :, :]).all(-1).float()
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
    save_open_clip_dir(model, mc, path, ctx)
    return {"path": str(path), "seconds": time.time() - t0, "loss_first": float(np.mean(losses[:20])),
            "loss_last": float(np.mean(losses[-20:]))}
