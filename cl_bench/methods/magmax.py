"""MagMax (docs/methods-wave2.md, magmax): sequential fine-tuning, and after every task a merge of the task
vectors tau_t = theta_t - theta_0 that keeps, for each parameter entry, the value of largest magnitude:

    theta_merged = theta_0 + merge_coef * maxmag(tau_1, ..., tau_t)

Training continues from the sequentially fine-tuned weights (theta_t, not the merge); evaluation and the
model checkpoint use the merged weights. The per-entry maximum is a left fold, so it is kept as one running
tensor instead of one task vector per task (O(params) instead of O(T x params); tests check the two agree).
"""

from __future__ import annotations

import torch

from cl_bench.errors import UserError

from .finetune import MICRO_FT, ZSCL_RECIPE, Finetune

TOWERS = ("visual", "both")


def fold_max_magnitude(running: torch.Tensor | None, tau: torch.Tensor) -> torch.Tensor:
    """One step of the merge: where |tau| >= |running| take tau, else keep running. Ties go to the newer
    task, as the reference's merge_max_abs (``>=``)."""
    if running is None:
        return tau.clone()
    return torch.where(tau.abs() >= running.abs(), tau, running)


def max_magnitude(taus: list[torch.Tensor]) -> torch.Tensor:
    """All at once: per entry, the value of largest magnitude over the tasks (ties: the latest task)."""
    stacked = torch.stack(taus)
    latest_first = stacked.flip(0)
    pick = latest_first.abs().argmax(dim=0, keepdim=True)  # argmax returns the first maximum: the latest task
    return latest_first.gather(0, pick)[0]


class MagMax(Finetune):
    NAME = "magmax"
    DESCRIPTION = ("MagMax: sequential fine-tuning; after each task theta_0 + 0.5 * per-entry max-magnitude "
                   "merge of the task vectors, which is what is evaluated")
    PAPER = "Marczak et al., MagMax: Leveraging Model Merging for Seamless Continual Learning (ECCV 2024); " \
            "reference danielm1405/magmax"
    # The suite's Continual-FT recipe (MagMax published no MTIL run), the reference's merge coefficient 0.5
    # and its trained tower (the image encoder against a frozen zero-shot text head).
    DEFAULTS = ZSCL_RECIPE | {"merge_coef": 0.5, "towers": "visual"}
    PROFILE_DEFAULTS = {"micro": MICRO_FT}
    SWITCHES = ("merge_coef", "towers")
    STATE = ("sequential", "tau_max")

    def __init__(self, ctx):
        super().__init__(ctx)
        if self.params["towers"] not in TOWERS:
            raise UserError(f"towers={self.params['towers']!r} is not valid for magmax; use one of {', '.join(TOWERS)}")
        # Built before --resume restores a checkpoint, so this is always the pre-trained model.
        self.theta0 = {n: p.detach().clone() for n, p in self.trained().items()}
        self.sequential: dict[str, torch.Tensor] | None = None  # theta_t, where the next task trains from
        self.tau_max: dict[str, torch.Tensor] | None = None  # running per-entry max-magnitude task vector
        self.report: dict = {}

    def trained(self) -> dict[str, torch.nn.Parameter]:
        """The parameters fine-tuning changes: the image tower, or both towers (never logit_scale)."""
        visual_only = self.params["towers"] == "visual"
        return {n: p for n, p in self.classifier.clip.named_parameters()
                if n != "logit_scale" and (n.startswith("visual.") or not visual_only)}

    @torch.no_grad()
    def before_training_exp(self, strategy, **kw):
        params = self.trained()
        if self.sequential is not None:  # the model holds the merge: swap the fine-tuned weights back in
            for n, p in params.items():
                p.copy_(self.sequential[n])
        for p in params.values():
            p.requires_grad_(True)

    @torch.no_grad()
    def after_training_exp(self, strategy, **kw):
        params, coef = self.trained(), self.params["merge_coef"]
        self.sequential = {n: p.detach().clone() for n, p in params.items()}
        running = self.tau_max or {}
        taken = total = 0
        for n, p in params.items():
            tau = self.sequential[n] - self.theta0[n]
            merged = fold_max_magnitude(running.get(n), tau)
            taken += int((merged == tau).sum()) if n in running else tau.numel()
            total += tau.numel()
            running[n] = merged
            p.copy_(self.theta0[n] + coef * merged)
        self.tau_max = running
        self.report = {"share_from_this_task": taken / total,
                       "tau_max_norm": float(torch.sqrt(sum((t.double() ** 2).sum() for t in running.values())))}
        super().after_training_exp(strategy, **kw)

    def task_report(self) -> dict:
        return self.report
