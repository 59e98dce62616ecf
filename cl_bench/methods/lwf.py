"""LwF as in ZSCL's code (docs/methods.md LW1): fine-tuning plus ZSCL's distillation, with the previous
task's model as teacher, the current task's training images as reference images and its class prompts as
reference texts. No weight ensemble, no L2."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from cl_bench.classifier import encode_text
from cl_bench.distill import zscl_distillation

from .finetune import MICRO_FT, ZSCL_RECIPE, Finetune


class LwF(Finetune):
    NAME = "lwf"
    DESCRIPTION = "LwF: fine-tuning distilled from the previous task's model on current-task images and prompts"
    PAPER = "Li & Hoiem, Learning without Forgetting (TPAMI 2017), as run in ZSCL's code (lwf.sh)"
    DEFAULTS = ZSCL_RECIPE | {"w_image": 1.0, "w_text": 1.0, "distill_T": 2.0}
    PROFILE_DEFAULTS = {"micro": MICRO_FT, "cil": {"w_image": 5.0, "w_text": 5.0}}
    SCENARIO_DEFAULTS = {"cil-micro": {"w_image": 5.0, "w_text": 5.0}}  # CIL loss weights, micro budget
    SWITCHES = ("w_image", "w_text", "distill_T")

    def before_training_exp(self, strategy, **kw):
        self.teacher = copy.deepcopy(self.classifier.clip).eval()  # model after the previous task (task 0: zero-shot)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        with torch.no_grad(), self.autocast():
            self.text = F.normalize(encode_text(self.teacher, self.classifier.tokens.to(strategy.device)).float(),
                                    dim=-1)
        self.ref = iter(())
        super().before_training_exp(strategy, **kw)

    def next_reference(self, strategy) -> torch.Tensor:
        """A separate shuffled pass over the task's images (restarted when exhausted)."""
        try:
            return next(self.ref)[0]
        except StopIteration:
            data = strategy.experience.dataset
            self.ref = iter(strategy.loader(data, shuffle=True, batch_size=self.params["batch_size"]))
            return next(self.ref)[0]

    def before_backward(self, strategy, **kw):
        x = self.next_reference(strategy).to(strategy.device)
        with torch.no_grad(), self.autocast():
            z_t = F.normalize(self.teacher.encode_image(x).float(), dim=-1)
        with self.autocast():
            z_s = F.normalize(self.classifier.clip.encode_image(x).float(), dim=-1)
        l_img, l_txt = zscl_distillation(z_s, z_t, self.text, float(self.teacher.logit_scale.exp()),
                                         self.params["distill_T"])
        strategy.loss = strategy.loss + self.params["w_image"] * l_img + self.params["w_text"] * l_txt

    def after_training_exp(self, strategy, **kw):
        super().after_training_exp(strategy, **kw)
        self.teacher = None
