"""Learning-rate schedules, stepped once per optimizer step."""

from __future__ import annotations

import math

import torch


def warmup_cosine(opt: torch.optim.Optimizer, total_steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """ZSCL's schedule (docs/methods.md C4): lr*(s+1)/warmup during warm-up, then half-cosine to 0 at the end."""
    warmup = min(warmup, max(total_steps - 1, 0))

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        span = max(total_steps - 1 - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(s - warmup, span) / span))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def one_cycle(opt: torch.optim.Optimizer, total_steps: int, max_lr: float) -> torch.optim.lr_scheduler.OneCycleLR:
    """KeepLoRA's OneCycleLR with PyTorch defaults (pct_start 0.3, cosine, div 25, final div 1e4) and its
    implicit beta1 cycling between 0.95 and 0.85 on Adam-family optimizers (docs/methods.md C4)."""
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=max(total_steps, 2))
