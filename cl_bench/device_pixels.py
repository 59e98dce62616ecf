"""The GPU input path (issue 13): datasets that hold preprocessed uint8 pixels (the pixel cache) hand them to
the device as uint8, a quarter of the float bytes, and the image tower normalises them there.

A forward pre-hook on ``clip.visual`` turns a uint8 batch into the model's float input with the backbone's
own ``normalize`` (the same float32 operations as ToTensor + Normalize). Every image path goes through
``visual``: the training step, evaluation, methods' own passes and deep copies of the model (teachers), so
float batches from other datasets pass through unchanged."""

from __future__ import annotations

import torch


def attach(clip: torch.nn.Module, backbone):
    """Let ``clip`` take uint8 (N, S, S, 3) batches; returns the hook handle."""

    def to_float(module, args):
        x = args[0]
        if x.dtype == torch.uint8:
            return (backbone.normalize(x), *args[1:])
        return None

    return clip.visual.register_forward_pre_hook(to_float)


def use_device_pixels(built, clip, backbone) -> int:
    """Swap every dataset of ``built`` that can give uint8 pixels (``.pixels()``) for its uint8 form and attach
    the hook; the number of datasets swapped (0: nothing changes)."""
    if getattr(backbone, "mean", None) is None:
        return 0
    swapped = 0
    for task in built.tasks:
        for split in ("train", "test"):
            ds = getattr(task, split)
            if callable(getattr(ds, "pixels", None)):
                setattr(task, split, ds.pixels())
                swapped += 1
    if swapped:
        attach(clip, backbone)
    return swapped
