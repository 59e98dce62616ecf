"""Input statistics of the attention projections, gathered with forward hooks.

For every attention block: the input of q, k and v (the same tensor, ln_1's output, so it is recorded
once per block — docs/methods.md C7) and the input of o (the head-concatenated attention output, which
MHA never exposes, so the hook recomputes it from the block's own weights).

Two statistics (docs/methods.md C7, KL14):
- ``mean_token_matrix`` (KeepLoRA's code): a running mean of the transposed token matrix X^T (D x m),
  elementwise across equally sized batches;
- ``covariance``: C = sum_tokens x x^T (D x D), the memory-sane second moment used by GPM and InfLoRA.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .lora import attention_modules

STATS = ("mean_token_matrix", "covariance")


def attention_output_input(mha: nn.MultiheadAttention, x: torch.Tensor, attn_mask) -> torch.Tensor:
    """The tensor that enters ``out_proj`` for query=key=value=x (batch-first, N x L x D)."""
    N, L, D = x.shape
    h = mha.num_heads
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(N, L, h, D // h).transpose(1, 2) for t in (q, k, v))
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return o.transpose(1, 2).reshape(N, L, D)


class StatAccumulator:
    """Accumulates one statistic per (tower, block, stream) while hooks are active.

    Keys are ``"{tower}.{block}.qkv"`` and ``"{tower}.{block}.o"``.
    """

    def __init__(self, stat: str):
        if stat not in STATS:
            raise ValueError(f"feature statistic must be one of {STATS}, got {stat!r}")
        self.stat = stat
        self.values: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, x: torch.Tensor) -> None:
        X = x.reshape(-1, x.shape[-1]).float()  # (tokens, D); row order (sample, position) is consistent
        m = X.shape[0]
        if self.stat == "covariance":
            C = X.T @ X
            self.values[key] = self.values[key] + C if key in self.values else C
            self.counts[key] = self.counts.get(key, 0) + m
            return
        n = self.counts.get(key, 0)
        if key in self.values and self.values[key].shape[1] != m:
            raise ValueError("mean_token_matrix needs equally sized batches (drop_last=True)")
        Xt = X.T
        self.values[key] = Xt / (n + m) if n == 0 else self.values[key] * (n / (n + m)) + Xt / (n + m)
        self.counts[key] = n + m

    @property
    def kind(self) -> str:
        """How subspace functions read the statistic (see cl_bench.subspace)."""
        return "gram" if self.stat == "covariance" else "matrix"

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.values.values())


@contextmanager
def record_attention_inputs(model: nn.Module, acc: StatAccumulator, towers=("visual", "text"),
                            streams=("qkv", "o")):
    """While active, every forward through the towers adds its attention inputs to ``acc``."""
    handles = []

    def hook_for(tower, block, mha):
        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs["query"]
            if not module.batch_first:
                x = x.transpose(0, 1)
            with torch.no_grad():
                if "qkv" in streams:
                    acc.add(f"{tower}.{block}.qkv", x)
                if "o" in streams:
                    acc.add(f"{tower}.{block}.o", attention_output_input(module, x, kwargs.get("attn_mask")))
        return hook

    for tower, _, block, mha in attention_modules(model, towers):
        handles.append(mha.register_forward_hook(hook_for(tower, block, mha), with_kwargs=True))
    try:
        yield acc
    finally:
        for h in handles:
            h.remove()
