"""Distillation and weight-space helpers shared by ZSCL, LwF and WiSE-FT (docs/methods.md C8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_ce(teacher_logits: torch.Tensor, student_logits: torch.Tensor, T: float) -> torch.Tensor:
    """T^2 * mean over rows of -sum_k softmax(t/T)_k log softmax(s/T)_k."""
    p = F.softmax(teacher_logits / T, dim=-1)
    return (T * T) * -(p * F.log_softmax(student_logits / T, dim=-1)).sum(-1).mean()


def zscl_distillation(z_student: torch.Tensor, z_teacher: torch.Tensor, text_teacher: torch.Tensor,
                      scale: float, T: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """ZSCL's image-side and "text-side" losses exactly as its code computes them: both use the
    student's *image* features and the teacher's text features (docs/methods.md C8); inputs are L2-normalised.

    Returns (L_img, L_txt): the soft CE over texts per image, and over images per text (the transpose).
    """
    l_t = scale * z_teacher @ text_teacher.T
    l_s = scale * z_student @ text_teacher.T
    return soft_ce(l_t, l_s, T), soft_ce(l_t.T, l_s.T, T)


def l2_to(params: dict[str, nn.Parameter], ref: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum ||theta - theta_ref||^2 over the given parameters (ZSCL's --l2, sum-reduction)."""
    return sum(((p - ref[n]) ** 2).sum() for n, p in params.items())


class WeightEnsemble:
    """Equal-weight running average of snapshots: theta_we <- (n theta_we + theta) / (n + 1)."""

    def __init__(self, params: dict[str, torch.Tensor]):
        self.avg = {n: p.detach().clone() for n, p in params.items()}
        self.n = 0

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor]) -> None:
        self.n += 1
        for name, p in params.items():
            self.avg[name].mul_(self.n / (self.n + 1)).add_(p.detach(), alpha=1 / (self.n + 1))


@torch.no_grad()
def interpolate_(params: dict[str, nn.Parameter], other: dict[str, torch.Tensor], alpha: float) -> None:
    """theta <- alpha * theta + (1 - alpha) * other, in place (WiSE-FT)."""
    for name, p in params.items():
        p.mul_(alpha).add_(other[name].to(p), alpha=1 - alpha)
