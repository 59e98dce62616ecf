"""WiSE-FT as in ZSCL's code (METHODS.md B.3): fine-tune each task, then interpolate in weight space with
the start-of-task model: theta_t = alpha * theta_ft + (1 - alpha) * theta_{t-1} (alpha = 0.8)."""

from __future__ import annotations

from cl_bench.api import Method
from cl_bench.distill import interpolate_

from .finetune import MICRO_FT, ZSCL_LR, FinetunePlugin
from .zscl import trainable_named


class WiSEFTPlugin(FinetunePlugin):
    def before_training_exp(self, strategy, **kw):
        super().before_training_exp(strategy, **kw)
        self.start = {n: p.detach().clone() for n, p in trainable_named(strategy.model.clip).items()}

    def after_training_exp(self, strategy, **kw):
        interpolate_(trainable_named(strategy.model.clip), self.start, self.p["wise_alpha"])
        self.start = None
        super().after_training_exp(strategy, **kw)

    def switches(self):
        return {"wise_alpha": self.p["wise_alpha"], "blend_with": "previous task"}


METHOD = Method(
    name="wise-ft",
    description="WiSE-FT: fine-tuning, then 0.8 * fine-tuned + 0.2 * start-of-task weights after each task",
    paper="Wortsman et al., Robust fine-tuning of zero-shot models (CVPR 2022), as run in ZSCL's code",
    defaults={"iterations": 1001, "lr": 1e-5, "weight_decay": 0.0, "warmup": 100, "label_smoothing": 0.2,
              "batch_size": 64, "amp": False, "lr_per_task": ZSCL_LR, "wise_alpha": 0.8},
    profile_defaults={"micro": MICRO_FT},
    plugins=lambda ctx: [WiSEFTPlugin(ctx)],
)
