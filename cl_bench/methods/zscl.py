"""ZSCL (docs/methods.md ZC1): full fine-tuning with distillation from the frozen initial CLIP on reference
images and sentences, an L2 pull to the start-of-task weights, and a weight ensemble every N steps.

loss = CE_ls + w_img L_img + w_txt L_txt + w_l2 sum ||theta - theta_start||^2; the task's final weights
are the ensemble average of {theta_start, theta_0, theta_N, theta_2N, ...}.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from cl_bench.classifier import encode_text
from cl_bench.distill import WeightEnsemble, l2_to, zscl_distillation
from cl_bench.errors import UserError

from .finetune import MICRO_FT, ZSCL_RECIPE, Finetune


def trainable_named(clip) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in clip.named_parameters() if n != "logit_scale"}


class ReferenceData:
    """Reference images (a tensor stream) and reference sentences (tokens)."""

    def __init__(self, ctx, params):
        self.batch = params["ref_batch_size"]
        if params["ref_images"]:
            self._from_files(ctx, params)
        elif getattr(ctx.backbone, "reference_data", None) is not None:  # the tiny backbones' pre-training world
            images, captions = ctx.backbone.reference_data(params["ref_count"], 10_000 + ctx.config.seed)
            self.images, self.captions = images, sorted(set(captions))
        else:
            raise UserError("zscl needs reference data: --set ref_images=/path/to/imagenet/train (an ImageFolder) "
                            "--set ref_captions=/path/to/captions.txt (one caption per line)")
        self.gen = torch.Generator()  # seeded per task by the plugin

    def _from_files(self, ctx, params):
        from torchvision.datasets import ImageFolder

        root, cap = Path(params["ref_images"]), Path(params["ref_captions"] or "")
        if not root.is_dir():
            raise UserError(f"reference images not found: {root} (an ImageFolder such as imagenet/train)")
        if not cap.is_file():
            raise UserError(f"reference captions not found: {cap} (a text file, one caption per line)")
        self.folder = ImageFolder(str(root), transform=ctx.backbone.transform)
        self.images = None
        self.captions = [line.strip() for line in cap.read_text().splitlines() if line.strip()]

    def next_images(self, device) -> torch.Tensor:
        n = len(self.images) if self.images is not None else len(self.folder)
        idx = torch.randint(n, (self.batch,), generator=self.gen)
        if self.images is not None:
            return self.images[idx].to(device)
        return torch.stack([self.folder[int(i)][0] for i in idx]).to(device)


class ZSCL(Finetune):
    NAME = "zscl"
    DESCRIPTION = ("ZSCL: fine-tuning with distillation from the initial CLIP on reference data, L2 to the "
                   "start of the task, and a weight ensemble")
    PAPER = ("Zheng et al., Preventing Zero-Shot Transfer Degradation in Continual Learning of Vision-Language "
             "Models (ICCV 2023); reference Thunderbeee/ZSCL mtil/")
    # ZSCL.sh on MTIL: 1000 iterations (1001 steps), lr 1e-5, ls 0.2, bs 64, image+text distillation (T=2,
    # weights 1/1), L2 1, WE every 100 steps; ImageNet reference images, CC captions.
    DEFAULTS = ZSCL_RECIPE | {"w_image": 1.0, "w_text": 1.0, "w_l2": 1.0, "we_freq": 100, "distill_T": 2.0,
                              "ref_images": "", "ref_captions": "", "ref_batch_size": 64, "ref_count": 2000}
    PROFILE_DEFAULTS = {
        "micro": MICRO_FT | {"ref_batch_size": 32, "we_freq": 10},
        # The CIL recipe: weights 5/5, no L2, WE every 10 steps, one epoch (docs/methods.md ZC5).
        "cil": {"iterations": 0, "epochs": 1, "w_image": 5.0, "w_text": 5.0, "w_l2": 0.0, "we_freq": 10,
                "lr": 7.1e-6, "warmup": 30},
    }
    # cil-micro keeps the micro training budget but the CIL loss recipe.
    SCENARIO_DEFAULTS = {"cil-micro": {"w_image": 5.0, "w_text": 5.0, "w_l2": 0.0}}
    SWITCHES = ("w_image", "w_text", "w_l2", "we_freq", "distill_T")
    OPERATIONAL = ("ref_images", "ref_captions")  # where the reference data lives, not what it is

    def __init__(self, ctx):
        super().__init__(ctx)
        self.ref = ReferenceData(ctx, self.params)
        self.teacher = copy.deepcopy(self.classifier.clip).eval()  # the initial model, for every task
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self._text = None

    @torch.no_grad()
    def teacher_text(self, device) -> torch.Tensor:
        if self._text is None:
            tok = self.classifier.tokenizer(self.ref.captions).to(device)
            self._text = torch.cat([F.normalize(encode_text(self.teacher, t), dim=-1) for t in tok.split(1000)])
        return self._text

    def before_training_exp(self, strategy, **kw):
        super().before_training_exp(strategy, **kw)
        # The reference stream restarts from the task's seed (the runner reseeds the global RNG per task), so a
        # run resumed at this task draws exactly the batches an uninterrupted run draws.
        self.ref.gen.manual_seed(int(torch.randint(2**62, (1,))))
        params = trainable_named(self.classifier.clip)
        self.start = {n: p.detach().clone() for n, p in params.items()}
        self.we = WeightEnsemble(params) if self.params["we_freq"] > 0 else None
        self.step = 0

    def before_backward(self, strategy, **kw):
        clip = self.classifier.clip
        x = self.ref.next_images(strategy.device)
        with torch.no_grad(), self.autocast():
            z_t = F.normalize(self.teacher.encode_image(x).float(), dim=-1)
        with self.autocast():
            z_s = F.normalize(clip.encode_image(x).float(), dim=-1)
        scale = float(self.teacher.logit_scale.exp())
        l_img, l_txt = zscl_distillation(z_s, z_t, self.teacher_text(strategy.device), scale,
                                         self.params["distill_T"])
        loss = strategy.loss + self.params["w_image"] * l_img + self.params["w_text"] * l_txt
        if self.params["w_l2"]:
            loss = loss + self.params["w_l2"] * l2_to(trainable_named(clip), self.start)
        strategy.loss = loss

    def after_update(self, strategy, **kw):
        if self.we is not None and self.step % self.params["we_freq"] == 0:
            self.we.update(trainable_named(self.classifier.clip))
        self.step += 1

    def after_training_exp(self, strategy, **kw):
        if self.we is not None:
            with torch.no_grad():
                for n, p in trainable_named(self.classifier.clip).items():
                    p.copy_(self.we.avg[n])
        super().after_training_exp(strategy, **kw)
