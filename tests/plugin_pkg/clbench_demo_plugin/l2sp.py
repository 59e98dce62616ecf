"""L2-SP: fine-tune the image tower with a pull towards the pre-trained weights (docs/adding-a-method.md)."""

import torch

from cl_bench.api import MICRO_BUDGET, CLMethod


class L2SP(CLMethod):
    NAME = "demo-l2sp"
    DESCRIPTION = "image-tower fine-tuning with an L2 pull towards the pre-trained weights"
    PAPER = "Li et al., Explicit Inductive Bias for Transfer Learning with CNNs (ICML 2018)"
    DEFAULTS = {"lr": 1e-5, "iterations": 1000, "warmup": 100, "l2sp": 0.01}  # new keys become --set keys
    PROFILE_DEFAULTS = {"micro": MICRO_BUDGET | {"lr": 6e-4, "warmup": 15}}  # the embedded scenarios
    SWITCHES = ("l2sp",)  # recorded in the results file

    def __init__(self, ctx):
        super().__init__(ctx)
        # Built before --resume restores a checkpoint, so this is always the pre-trained model.
        self.anchor = {n: p.detach().clone() for n, p in self.visual().items()}
        self.penalty = 0.0

    def visual(self) -> dict[str, torch.nn.Parameter]:
        return dict(self.classifier.clip.visual.named_parameters())

    def before_training_exp(self, strategy, **kw):
        for p in self.visual().values():  # what trains; the runner builds AdamW over it (param_groups)
            p.requires_grad_(True)

    def before_backward(self, strategy, **kw):
        pull = sum(((p - self.anchor[n]) ** 2).sum() for n, p in self.visual().items())
        strategy.loss = strategy.loss + self.params["l2sp"] * pull
        self.penalty = pull.detach()

    def after_training_exp(self, strategy, **kw):
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def task_report(self) -> dict:
        return {"l2sp_penalty_last_step": float(self.penalty)}
