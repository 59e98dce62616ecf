"""O-LoRA (docs/methods.md OL1): a new LoRA pair per task, earlier pairs merged into the weights but their
A factors kept, and a penalty on the overlap of the new A with every old A.

loss = CE + lambda1 * sum_modules |A_old A_new^T|_1 + lambda2 * sum_new (|A|_F + |B|_F)  (the reference's
L1 of the overlap entries and unsquared Frobenius norms). Our A is (in x r), i.e. the reference's A^T.
"""

from __future__ import annotations

import torch

from cl_bench import lora

from .lora import MICRO_LORA, SeqLoRA


def orthogonality_penalty(old_A: dict[str, torch.Tensor], adapters: dict[str, lora.LoRAAdapter]) -> torch.Tensor:
    """sum over modules of the L1 norm of (A_old^T A_new): zero when there is no old pair (task 0)."""
    total = None
    for key, a in adapters.items():
        if key in old_A:
            term = (old_A[key].to(a.A).T @ a.A).abs().sum()
            total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def l2_penalty(adapters: dict[str, lora.LoRAAdapter]) -> torch.Tensor:
    return sum((a.A.norm() + a.B.norm() for a in adapters.values()), torch.zeros(()))


class OLoRA(SeqLoRA):
    NAME = "olora"
    DESCRIPTION = "O-LoRA: a new LoRA pair per task, penalising overlap of its A with earlier tasks' A"
    PAPER = ("Wang et al., Orthogonal Subspace Learning for Language Model Continual Learning (EMNLP 2023 "
             "Findings); reference cmnfriend/O-LoRA")
    # Reference: q and v, r = 8, alpha = 32, lambda1 = 0.5, lambda2 = 0; schedule as the LoRA baseline.
    DEFAULTS = {"rank": 8, "alpha": 32.0, "targets": ["q", "v"], "lambda1": 0.5, "lambda2": 0.0, "lr": 1e-3,
                "weight_decay": 0.01, "batch_size": 64, "epochs": 5}
    PROFILE_DEFAULTS = {"micro": MICRO_LORA | {"alpha": 16.0}}
    SWITCHES = ("targets", "rank", "alpha", "lambda1", "lambda2")
    STATE = ("old_A",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.old_A: dict[str, torch.Tensor] = {}  # module key -> stacked frozen A's of earlier tasks (in x r_sum)
        self.last_penalty = 0.0

    def before_backward(self, strategy, **kw):
        orth = orthogonality_penalty(self.old_A, self.adapters).to(strategy.loss)
        strategy.loss = strategy.loss + self.params["lambda1"] * orth
        if self.params["lambda2"]:
            strategy.loss = strategy.loss + self.params["lambda2"] * l2_penalty(self.adapters).to(strategy.loss)
        self.last_penalty = orth.detach()  # read once per task, no per-step device sync

    def after_training_exp(self, strategy, **kw):
        for key, a in self.adapters.items():
            A = a.A.detach().clone()
            self.old_A[key] = torch.cat([self.old_A[key], A], dim=1) if key in self.old_A else A
        super().after_training_exp(strategy, **kw)

    def task_report(self):
        return {"orthogonality_penalty_last_step": float(self.last_penalty)}
