"""LwF as in ZSCL's code (METHODS.md B.3): fine-tuning plus ZSCL's distillation, with the previous task's
model as teacher, the current task's training images as reference images and its class prompts as
reference texts. No weight ensemble, no L2."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from cl_bench.api import Method
from cl_bench.classifier import encode_text
from cl_bench.distill import zscl_distillation

from .finetune import MICRO_FT, ZSCL_LR, FinetunePlugin


class LwFPlugin(FinetunePlugin):
    def before_training_exp(self, strategy, **kw):
        clf = strategy.model
        self.teacher = copy.deepcopy(clf.clip).eval()  # model after the previous task (task 0: zero-shot)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            self.text = F.normalize(encode_text(self.teacher, clf._tokens.to(strategy.device)), dim=-1)
        self.ref = iter(())
        super().before_training_exp(strategy, **kw)

    def next_reference(self, strategy) -> torch.Tensor:
        """A separate shuffled pass over the task's images (restarted when exhausted)."""
        try:
            return next(self.ref)[0]
        except StopIteration:
            data = strategy.experience.dataset
            self.ref = iter(strategy.loader(data, shuffle=True, batch_size=self.p["batch_size"]))
            return next(self.ref)[0]

    def before_backward(self, strategy, **kw):
        x = self.next_reference(strategy).to(strategy.device)
        with torch.no_grad():
            z_t = F.normalize(self.teacher.encode_image(x).float(), dim=-1)
        z_s = F.normalize(strategy.model.clip.encode_image(x).float(), dim=-1)
        l_img, l_txt = zscl_distillation(z_s, z_t, self.text, float(self.teacher.logit_scale.exp()),
                                         self.p["distill_T"])
        strategy.loss = strategy.loss + self.p["w_image"] * l_img + self.p["w_text"] * l_txt

    def after_training_exp(self, strategy, **kw):
        super().after_training_exp(strategy, **kw)
        self.teacher = None

    def switches(self):
        return {"w_image": self.p["w_image"], "w_text": self.p["w_text"], "distill_T": self.p["distill_T"]}


METHOD = Method(
    name="lwf",
    description="LwF: fine-tuning distilled from the previous task's model on current-task images and prompts",
    paper="Li & Hoiem, Learning without Forgetting (TPAMI 2017), as run in ZSCL's code (lwf.sh)",
    defaults={"iterations": 1001, "lr": 1e-5, "weight_decay": 0.0, "warmup": 100, "label_smoothing": 0.2,
              "batch_size": 64, "amp": False, "lr_per_task": ZSCL_LR, "w_image": 1.0, "w_text": 1.0,
              "distill_T": 2.0},
    profile_defaults={"micro": MICRO_FT,
                      "cil": {"w_image": 5.0, "w_text": 5.0},
                      "cil-micro": {"w_image": 5.0, "w_text": 5.0}},  # CIL loss weights, micro budget
    plugins=lambda ctx: [LwFPlugin(ctx)],
)
