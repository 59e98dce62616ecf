"""LoRA mechanics shared by every LoRA-family method: attach to attention q/k/v/o of both CLIP towers,
read and move the deltas, merge, discard.

open_clip's attention is ``nn.MultiheadAttention``: q, k, v are row blocks of the fused
``in_proj_weight`` (3D x D) and o is ``out_proj.weight``. MHA reads those tensors directly (it never
calls ``out_proj.forward``), so module replacement would silently do nothing; instead each weight gets a
``torch.nn.utils.parametrize`` parametrization W -> W + delta, which MHA sees in training and eval.

Convention (docs/methods.md C1): for a weight W (out, in), an adapter has A (in x r) and B (r x out) and
adds ``delta = s * (A B)^T`` (so a token x gets ``s * (x A) B`` added to its projection).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

TARGETS = ("q", "k", "v", "o")
TOWERS = ("visual", "text")
_BLOCK = {"q": 0, "k": 1, "v": 2}


class LoRAAdapter(nn.Module):
    """One low-rank pair for one (out x in) weight block. Both factors are Parameters; which of them
    trains is the method's choice (``requires_grad``)."""

    def __init__(self, d_in: int, d_out: int, rank: int, scale: float):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(d_in, rank))
        self.B = nn.Parameter(torch.zeros(rank, d_out))
        self.scale = scale
        self._owner: tuple[nn.MultiheadAttention, str, int] | None = None  # (mha, param name, row block)

    def delta(self) -> torch.Tensor:
        """The (out, in) weight delta ``s (A B)^T``."""
        return self.scale * (self.A @ self.B).T

    def base_weight(self) -> torch.Tensor:
        """A view of the underlying (unparametrized) weight block; in-place edits change the model."""
        mha, pname, block = self._owner
        W = mha.parametrizations[pname].original
        if pname == "weight":  # out_proj: the whole matrix
            return W
        d = W.shape[1]
        return W[block * d:(block + 1) * d]

    @torch.no_grad()
    def add_to_base(self, sign: float = 1.0) -> None:
        """W <- W + sign * delta (e.g. sign=-1 subtracts an initial delta so the function is unchanged)."""
        W = self.base_weight()
        W.add_(sign * self.delta().to(W.dtype))


class _Delta(nn.Module):
    """Parametrization of one weight tensor: adds each adapter's delta to its row block."""

    def __init__(self, adapters: dict[int, LoRAAdapter], n_blocks: int):
        super().__init__()
        self.adapters = nn.ModuleDict({str(b): a for b, a in adapters.items()})
        self.n_blocks = n_blocks

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        if self.n_blocks == 1:
            return W + self.adapters["0"].delta().to(W.dtype)
        rows = W.chunk(self.n_blocks, dim=0)
        return torch.cat([r + self.adapters[str(b)].delta().to(W.dtype) if str(b) in self.adapters else r
                          for b, r in enumerate(rows)], dim=0)


def attention_modules(model: nn.Module, towers: Iterable[str] = TOWERS) -> Iterator[tuple[str, str, int, nn.Module]]:
    """Yield (tower, module path, block index, MultiheadAttention) for every attention layer of the towers."""
    roots = {"visual": "visual.transformer.resblocks", "text": "transformer.resblocks"}
    for tower in towers:
        blocks = model.get_submodule(roots[tower])
        for i, block in enumerate(blocks):
            yield tower, f"{roots[tower]}.{i}.attn", i, block.attn


def attach(model: nn.Module, *, rank: int, alpha: float, targets: Iterable[str] = TARGETS,
           towers: Iterable[str] = TOWERS, init: str = "kaiming") -> dict[str, LoRAAdapter]:
    """Attach fresh adapters; returns them keyed ``"{tower}.{block}.{target}"``.

    ``init='kaiming'``: A ~ Kaiming-uniform(a=sqrt 5), B = 0 (PEFT default, function unchanged);
    ``init='zeros'``: both zero (the method sets them itself). Scaling ``s = alpha / rank``.
    """
    targets = tuple(targets)
    bad = set(targets) - set(TARGETS)
    if bad:
        raise ValueError(f"unknown LoRA targets {sorted(bad)}; valid: {TARGETS}")
    adapters: dict[str, LoRAAdapter] = {}
    for tower, _, i, mha in attention_modules(model, towers):
        if not mha._qkv_same_embed_dim:
            raise ValueError("LoRA needs fused in_proj_weight (q, k, v of equal width)")
        d, dev = mha.embed_dim, mha.in_proj_weight.device

        def new(owner, d=d, dev=dev) -> LoRAAdapter:
            a = LoRAAdapter(d, d, rank, alpha / rank).to(dev)
            a._owner = owner
            if init == "kaiming":
                nn.init.kaiming_uniform_(a.A.data.T, a=math.sqrt(5))  # as nn.Linear(in -> r)
            return a

        made = {t: new((mha, "in_proj_weight", _BLOCK[t])) for t in targets if t in _BLOCK}
        if "o" in targets:
            made["o"] = new((mha.out_proj, "weight", 0))
        add_deltas(mha, made)
        for t, a in made.items():
            adapters[f"{tower}.{i}.{t}"] = a
    return adapters


def add_deltas(mha: nn.Module, made: dict[str, nn.Module]) -> None:
    """Parametrize one attention module's weights as W + delta for each adapter of ``made`` (keyed q, k, v, o;
    anything with a ``delta()`` of its weight block's shape), so ``merge`` folds them in."""
    qkv = {_BLOCK[t]: a for t, a in made.items() if t in _BLOCK}
    if qkv:
        parametrize.register_parametrization(mha, "in_proj_weight", _Delta(qkv, 3), unsafe=True)
    if "o" in made:
        parametrize.register_parametrization(mha.out_proj, "weight", _Delta({0: made["o"]}, 1), unsafe=True)


def _parametrized(model: nn.Module):
    for _, _, _, mha in attention_modules(model):
        for mod, pname in ((mha, "in_proj_weight"), (mha.out_proj, "weight")):
            if parametrize.is_parametrized(mod, pname):
                yield mod, pname


def merge(model: nn.Module) -> None:
    """Fold every attached adapter into its base weight and remove the adapters (exact: the base
    Parameter object is kept, holding W + delta)."""
    for mod, pname in list(_parametrized(model)):
        parametrize.remove_parametrizations(mod, pname, leave_parametrized=True)


def discard(model: nn.Module) -> None:
    """Remove every attached adapter without merging (the base weights are left as they are)."""
    for mod, pname in list(_parametrized(model)):
        parametrize.remove_parametrizations(mod, pname, leave_parametrized=False)


def adapter_parameters(adapters: dict[str, LoRAAdapter], which: str = "AB") -> list[nn.Parameter]:
    return [getattr(a, f) for a in adapters.values() for f in which]


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with the plain (unparametrized) key names and the *effective* weights: loadable into a
    fresh model before any adapter is attached."""
    sd = {}
    for k, v in model.state_dict().items():
        if ".parametrizations." in k:
            continue
        sd[k] = v
    with torch.no_grad():
        for _, path, _, mha in attention_modules(model):
            sd[f"{path}.in_proj_weight"] = mha.in_proj_weight.detach().clone()
            sd[f"{path}.out_proj.weight"] = mha.out_proj.weight.detach().clone()
    return sd
