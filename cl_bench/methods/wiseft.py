"""WiSE-FT as in ZSCL's code (docs/methods.md WF1): fine-tune each task, then interpolate in weight space
with the start-of-task model: theta_t = alpha * theta_ft + (1 - alpha) * theta_{t-1} (alpha = 0.8)."""

from __future__ import annotations

from cl_bench.distill import interpolate_

from .finetune import ZSCL_RECIPE, Finetune
from .zscl import trainable_named


class WiSEFT(Finetune):
    NAME = "wise-ft"
    DESCRIPTION = "WiSE-FT: fine-tuning, then 0.8 * fine-tuned + 0.2 * start-of-task weights after each task"
    PAPER = "Wortsman et al., Robust fine-tuning of zero-shot models (CVPR 2022), as run in ZSCL's code"
    DEFAULTS = ZSCL_RECIPE | {"wise_alpha": 0.8}

    def before_training_exp(self, strategy, **kw):
        super().before_training_exp(strategy, **kw)
        self.start = {n: p.detach().clone() for n, p in trainable_named(self.classifier.clip).items()}

    def after_training_exp(self, strategy, **kw):
        interpolate_(trainable_named(self.classifier.clip), self.start, self.params["wise_alpha"])
        self.start = None
        super().after_training_exp(strategy, **kw)

    def switches(self):
        return {"wise_alpha": self.params["wise_alpha"], "blend_with": "previous task"}
