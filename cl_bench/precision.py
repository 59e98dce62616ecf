"""Numeric precision of a run: the ``precision`` parameter, resolved once per run (docs/methods.md C9).
On CPU ``auto`` is fp32, so CPU results do not depend on this module."""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError

CHOICES = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(name: str, device: torch.device) -> str:
    """``auto``: bf16 autocast on a CUDA device that supports it, fp16 on an older one, fp32 on CPU."""
    if name not in CHOICES:
        raise UserError(f"precision={name!r} is not one of {', '.join(CHOICES)} (--set precision=auto)")
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise UserError("precision=fp16 needs a CUDA device (its GradScaler is CUDA-only); use bf16 or fp32 on CPU")
    return name


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def needs_scaler(precision: str) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    return precision == "fp16"
