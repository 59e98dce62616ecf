"""Continual-FT (docs/methods.md FT1): full fine-tuning of both towers, task after task, with CE only."""

from cl_bench.api import MICRO_BUDGET, CLMethod

# Full fine-tuning on the micro scenarios: the shared micro budget (cl_bench.api.MICRO_BUDGET) at a learning
# rate tuned on the validation split (docs/micro-world.md); ZSCL's warm-up and label smoothing are kept.
MICRO_FT = MICRO_BUDGET | {"lr": 6e-4, "warmup": 15, "lr_per_task": {}}
# ZSCL's scripts: 5e-5 for Aircraft and MNIST, the lr (1e-5) for every other MTIL dataset.
ZSCL_LR = {"Aircraft": 5e-5, "MNIST": 5e-5}
# ZSCL's MTIL recipe: 1000 iterations (0..1000 inclusive), AdamW wd 0, warm-up 100 + cosine, label smoothing
# 0.2, batch 64, fp32; lr 1e-5, and 5e-5 for Aircraft and MNIST (in either order).
ZSCL_RECIPE = {"iterations": 1001, "lr": 1e-5, "weight_decay": 0.0, "warmup": 100, "label_smoothing": 0.2,
               "batch_size": 64, "precision": "fp32", "lr_per_task": ZSCL_LR}


class Finetune(CLMethod):
    """Everything trains except ``logit_scale`` (ZSCL's --train-mode=whole)."""

    NAME = "finetune"
    DESCRIPTION = "Continual-FT: full fine-tuning of both towers on each task in turn (forgets)"
    PAPER = "ZSCL baseline, Zheng et al., ICCV 2023 (mtil/src/models/finetune.py)"
    DEFAULTS = ZSCL_RECIPE
    PROFILE_DEFAULTS = {"micro": MICRO_FT}

    def before_training_exp(self, strategy, **kw):
        for name, p in self.classifier.clip.named_parameters():
            p.requires_grad_(name != "logit_scale")

    def after_training_exp(self, strategy, **kw):
        for p in self.classifier.parameters():
            p.requires_grad_(False)
