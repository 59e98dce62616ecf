"""Mixture-of-adapter-experts mechanics for MoE-Adapters (docs/methods-moe.md).

Every transformer block of the chosen towers gets ``E`` bottleneck adapters ("experts") and one router per
routing slot (one per task, or one shared). The block becomes ``out = h + MLP(ln_2(h)) + sum_e g_e * A_e(h)``
with ``h`` the residual stream after attention and ``g`` the router's top-k gates, computed from ``h`` at
position 0 (CLS for images, SOT for text) and shared by every token of a sample.

The adapters are inserted with two hooks (a pre-hook on ``ln_2`` keeps ``h``, a hook on ``mlp`` adds the
mixture) and registered as a submodule ``moe`` of the block, so they are part of the model's state dict
(checkpoints and ``--resume`` carry them) without changing any open_clip module.

Routing is chosen per sample before each forward: ``route`` is ``None`` (experts off: the pre-trained
CLIP), an int (every sample uses that router) or a long tensor (N,) of router indices, -1 meaning experts off
for that sample. Zero-shot and expert samples can therefore share a batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

ROOTS = {"visual": "visual.transformer", "text": "transformer"}


class Expert(nn.Module):
    """Bottleneck adapter ``scale * up(dropout(relu(down(h))))``; up starts at zero, so a fresh expert adds
    nothing."""

    def __init__(self, d: int, width: int, dropout: float, scale: float):
        super().__init__()
        self.down = nn.Linear(d, width)
        self.up = nn.Linear(width, d)
        self.dropout, self.scale = dropout, scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        for t in (self.down.bias, self.up.weight, self.up.bias):
            nn.init.zeros_(t)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = F.dropout(F.relu(self.down(h)), self.dropout, self.training)
        return self.scale * self.up(z)


def top_k_gates(logits: torch.Tensor, k: int) -> torch.Tensor:
    """(N, E) gates: softmax over each row's k largest logits, zero elsewhere (rows sum to 1)."""
    k = min(k, logits.shape[1])
    top, idx = logits.topk(k, dim=1)
    return torch.zeros_like(logits).scatter(1, idx, torch.softmax(top, dim=1))


class MoEBlock(nn.Module):
    """The experts and routers of one block. ``w_gate[r]``, ``w_noise[r]`` (D x E) form router r; both start at
    zero. In training mode the logits get Shazeer's noise ``eps * (softplus(c W_n) + noise_eps)``."""

    def __init__(self, d: int, *, experts: int, routers: int, top_k: int, width: int, dropout: float,
                 scale: float, noisy: bool = True, noise_eps: float = 1e-2, batch_first: bool = True):
        super().__init__()
        self.experts = nn.ModuleList(Expert(d, width, dropout, scale) for _ in range(experts))
        self.w_gate = nn.ParameterList(nn.Parameter(torch.zeros(d, experts)) for _ in range(routers))
        self.w_noise = nn.ParameterList(nn.Parameter(torch.zeros(d, experts)) for _ in range(routers))
        self.top_k, self.noisy, self.noise_eps, self.batch_first = top_k, noisy, noise_eps, batch_first
        self.route: int | torch.Tensor | None = None
        self.counts = torch.zeros(experts, dtype=torch.long)  # samples per expert since the last reset
        self._h: torch.Tensor | None = None

    def gates(self, c: torch.Tensor, r: int) -> torch.Tensor:
        """Gates of router r for the position-0 vectors ``c`` (N, D)."""
        logits = c.float() @ self.w_gate[r].float()
        if self.noisy and self.training:
            std = F.softplus(c.float() @ self.w_noise[r].float()) + self.noise_eps
            logits = logits + torch.randn_like(logits) * std
        return top_k_gates(logits, self.top_k)

    def mixture(self, h: torch.Tensor) -> torch.Tensor | None:
        """The adapters' contribution for ``h`` (batch-first N, L, D) under the current route; None when every
        sample has experts off."""
        route = self.route
        if route is None:
            return None
        n = h.shape[0]
        route = torch.full((n,), route, dtype=torch.long) if isinstance(route, int) else route.cpu()
        if len(route) != n:
            raise RuntimeError(f"MoE route has {len(route)} entries for a batch of {n}")
        y = None
        for r in route.unique().tolist():
            if r < 0:
                continue
            rows = (route == r).nonzero().squeeze(1).to(h.device)
            g = self.gates(h[rows, 0], r)  # (n_r, E)
            used = g > 0
            if self.training:
                self.counts += used.sum(0).cpu()
            for e in used.any(0).nonzero().squeeze(1).tolist():
                sel = used[:, e].nonzero().squeeze(1)
                out = self.experts[e](h[rows[sel]]) * g[sel, e].view(-1, 1, 1)
                y = torch.zeros_like(h) if y is None else y
                y = y.index_add(0, rows[sel], out.to(h.dtype))
        return y

    # -- hooks ----------------------------------------------------------------------------------------
    def _keep_h(self, module, args):
        self._h = args[0]

    def _add(self, module, args, output):
        h, self._h = self._h, None
        if h is None or self.route is None:
            return output
        if not self.batch_first:
            y = self.mixture(h.transpose(0, 1))
            return output if y is None else output + y.transpose(0, 1)
        y = self.mixture(h)
        return output if y is None else output + y


def blocks_of(model: nn.Module, tower: str) -> Iterator[tuple[int, nn.Module, bool]]:
    """(index, residual block, batch_first) of a tower."""
    tr = model.get_submodule(ROOTS[tower])
    for i, block in enumerate(tr.resblocks):
        yield i, block, getattr(tr, "batch_first", True)


def attach(model: nn.Module, towers, **cfg) -> dict[str, MoEBlock]:
    """Add a ``MoEBlock`` to every block of the towers; returns them keyed ``"{tower}.{block}"``."""
    out = {}
    for tower in towers:
        if tower not in ROOTS:
            raise ValueError(f"unknown tower {tower!r}; valid: {sorted(ROOTS)}")
        for i, block, batch_first in blocks_of(model, tower):
            if not isinstance(getattr(block, "ls_2", nn.Identity()), nn.Identity):
                raise ValueError("MoE adapters expect blocks without layer scale (ls_2 must be Identity)")
            d = block.ln_2.normalized_shape[0]
            dev = block.ln_2.weight.device
            moe = MoEBlock(d, batch_first=batch_first, **cfg).to(dev)
            block.add_module("moe", moe)
            block.ln_2.register_forward_pre_hook(moe._keep_h)
            block.mlp.register_forward_hook(moe._add)
            out[f"{tower}.{i}"] = moe
    return out


def set_route(blocks: dict[str, MoEBlock], tower: str, route) -> None:
    for key, b in blocks.items():
        if key.startswith(tower + "."):
            b.route = route


def count_params(d: int, blocks: int, *, experts: int, routers: int, width: int) -> dict[str, int]:
    """Parameters of the MoE modules of one tower of ``blocks`` blocks of width ``d``, from the architecture."""
    expert = 2 * d * width + width + d
    return {"experts": blocks * experts * expert, "routers": blocks * routers * 2 * d * experts}
