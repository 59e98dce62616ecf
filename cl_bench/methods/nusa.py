"""NuSA-CL (docs/methods-wave2.md, nusa-cl): null-space adaptation, memory-free.

Before each task, every adapted weight W (out x in; attention q, k, v, o of both towers) is decomposed as
W = U S V^T. Its low-energy singular directions (the last r, or those beyond an energy threshold) form the
approximate null space; the task's update is s * U_r C V_r^T with U_r, V_r frozen and only the r x r core C
trained (zero at the start, so the function is unchanged). After the task the update is merged into W and
nothing is kept: the next task decomposes the merged weights afresh.
"""

from __future__ import annotations

import torch
from torch import nn

from cl_bench import lora
from cl_bench.errors import UserError
from cl_bench.subspace import energy_rank

from .lora import MICRO_LORA, LoRAFamily

RULES = ("rank", "energy")


def null_basis(W: torch.Tensor, rule: str, rank: int, energy: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(U_r, V_r, share): W's last singular directions on the output (U_r, out x r) and input (V_r, in x r)
    side, and the share of W's energy (sum of S^2) that lies in them.

    ``rule='rank'``: the last ``rank`` directions. ``rule='energy'``: every direction after the leading ones
    that reach ``energy`` of the total, at most ``rank`` of them (``rank=0``: no cap)."""
    U, S, Vh = torch.linalg.svd(W.detach().float(), full_matrices=False)
    n, e = S.numel(), S**2
    if rule == "rank":
        k = min(rank, n)
    else:
        k = n - min(energy_rank(e, energy) + 1, n)  # the leading directions hold at least `energy`
        k = min(k, rank) if rank > 0 else k
    share = float(e[n - k:].sum() / e.sum()) if k and e.sum() > 0 else 0.0
    return U[:, n - k:].contiguous(), Vh[n - k:].T.contiguous(), share


class NullSpaceAdapter(nn.Module):
    """delta = s * U C V^T for one (out x in) weight block: U, V fixed buffers, the core C trains."""

    def __init__(self, U: torch.Tensor, V: torch.Tensor, scale: float):
        super().__init__()
        self.register_buffer("U", U)
        self.register_buffer("V", V)
        self.C = nn.Parameter(torch.zeros(U.shape[1], V.shape[1], device=U.device))
        self.scale = scale

    def delta(self) -> torch.Tensor:
        return self.scale * self.U @ self.C @ self.V.T


def attach(clip: nn.Module, *, targets, rule: str, rank: int, energy: float, scale: float):
    """A null-space adapter on every targeted attention weight, as parametrizations W -> W + delta through
    cl_bench.lora's parametrization (so lora.merge folds them in). Returns ({key: adapter}, {key: share})."""
    adapters, shares = {}, {}
    for tower, _, i, mha in lora.attention_modules(clip):
        blocks = dict(zip("qkv", mha.in_proj_weight.chunk(3, dim=0))) | {"o": mha.out_proj.weight}
        made = {}
        for t in targets:
            U, V, share = null_basis(blocks[t], rule, rank, energy)
            if U.shape[1] == 0:
                continue  # nothing beyond the threshold: this weight does not change
            made[t] = NullSpaceAdapter(U, V, scale)
            adapters[f"{tower}.{i}.{t}"], shares[f"{tower}.{i}.{t}"] = made[t], share
        lora.add_deltas(mha, made)
    return adapters, shares


@torch.no_grad()
def leakage(a: NullSpaceAdapter) -> float:
    """||delta - P_U delta P_V|| / ||delta||: how much of the update left the null space (0 up to rounding)."""
    D = a.delta()
    inside = a.U @ (a.U.T @ D @ a.V) @ a.V.T
    n = D.norm()
    return float((D - inside).norm() / n) if n > 0 else 0.0


class NuSACL(LoRAFamily):
    NAME = "nusa-cl"
    DESCRIPTION = ("NuSA-CL: per task, an r x r core trained between the last r left and right singular "
                   "vectors of each current q/k/v/o weight (its approximate null space), merged; no memory")
    PAPER = "Jo and Kim, Memory-Free Continual Learning with Null Space Adaptation for Zero-Shot " \
            "Vision-Language Models (ICLR 2026, OpenReview tucuU4sQ3s, arXiv 2510.21175); no released code"
    # r = 128 on q/k/v/o of both towers gives 96 * 128^2 = 1.57 M trainable parameters, the paper's "1.5 M";
    # the optimizer and budget are this suite's Seq-LoRA (docs/methods-wave2.md, nusa-cl).
    DEFAULTS = {"rank": 128, "null_rule": "rank", "null_energy": 0.95, "scale": 1.0,
                "targets": ["q", "k", "v", "o"], "lr": 1e-3, "weight_decay": 0.01, "batch_size": 64, "epochs": 5}
    # Micro: the LoRA family's budget and rate, but rank 32 of width 128: rank 8 holds 0.1 % of the weights'
    # energy and does not learn a new task (docs/methods-wave2.md, nusa-cl).
    PROFILE_DEFAULTS = {"micro": MICRO_LORA | {"rank": 32}}
    SWITCHES = ("rank", "null_rule", "null_energy", "scale", "targets")

    def __init__(self, ctx):
        super().__init__(ctx)
        p = self.params
        if p["null_rule"] not in RULES:
            raise UserError(f"null_rule={p['null_rule']!r} is not valid for nusa-cl; use one of {', '.join(RULES)}")
        bad = set(p["targets"]) - set(lora.TARGETS)
        if bad:
            raise UserError(f"unknown nusa-cl targets {sorted(bad)}; use a subset of {list(lora.TARGETS)}")
        if p["rank"] < 0 or (p["null_rule"] == "rank" and p["rank"] == 0):
            raise UserError(f"rank={p['rank']} gives nusa-cl nothing to train; set rank to a positive integer")
        self.adapters: dict[str, NullSpaceAdapter] = {}
        self.report: dict = {}

    def before_training_exp(self, strategy, **kw):
        p = self.params
        self.adapters, shares = attach(self.classifier.clip, targets=p["targets"], rule=p["null_rule"],
                                       rank=p["rank"], energy=p["null_energy"], scale=p["scale"])
        ranks = [a.C.shape[0] for a in self.adapters.values()]
        self.report = {"null_rank": _summary(ranks), "null_energy_share": _summary(list(shares.values()))}

    def param_groups(self, strategy):
        return [a.C for a in self.adapters.values()]

    def after_training_exp(self, strategy, **kw):
        if self.adapters:
            self.report["leakage_max"] = max(leakage(a) for a in self.adapters.values())
            self.report["update_norm"] = float(torch.sqrt(sum(a.delta().detach().norm() ** 2
                                                              for a in self.adapters.values())))
        super().after_training_exp(strategy, **kw)  # merge into the weights; keep nothing

    def task_report(self) -> dict:
        return self.report


def _summary(vals: list[float]) -> dict:
    return {"min": min(vals), "mean": sum(vals) / len(vals), "max": max(vals)} if vals else {}
