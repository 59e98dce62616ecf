"""Model FLOPs of a CLIP classifier, counted from the architecture, and the dense peak FLOP/s of known GPUs.

Only matrix multiplications count (2 FLOPs per multiply-add); norms, activations, softmax and the
optimizer are left out, as in the usual model-FLOPs-utilisation convention. The formulas are in
docs/bench.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Tower:
    """A pre-norm transformer tower: ``tokens`` positions of ``width`` channels through ``layers`` blocks
    whose MLP is ``mlp_width`` wide, then a projection to ``embed`` on one pooled token."""

    tokens: int
    width: int
    layers: int
    mlp_width: int
    embed: int


def block_flops(tokens: int, width: int, mlp_width: int) -> int:
    """One block: q/k/v and output projections, the two attention products, the two MLP layers."""
    n, w = tokens, width
    projections = 2 * n * w * (3 * w) + 2 * n * w * w
    attention = 2 * (2 * n * n * w)  # Q K^T and softmax(.) V, over every head together
    mlp = 2 * (2 * n * w * mlp_width)
    return projections + attention + mlp


def tower_flops(t: Tower) -> int:
    return t.layers * block_flops(t.tokens, t.width, t.mlp_width) + 2 * t.width * t.embed


def vit_flops(image_size: int, patch_size: int, width: int, layers: int, mlp_width: int, embed: int) -> int:
    """Forward FLOPs of one image through a ViT: the patch embedding (a matmul of each patch's 3 p^2 pixels
    with a (3 p^2, width) kernel) plus the tower over the patches and the class token (open_clip always
    prepends one)."""
    patches = (image_size // patch_size) ** 2
    embed_patches = 2 * patches * (3 * patch_size**2) * width
    return embed_patches + tower_flops(Tower(patches + 1, width, layers, mlp_width, embed))


def train_step_flops(*, batch: int, image: int, text_per_prompt: int, prompts: int, embed: int,
                     text_trains: bool) -> int:
    """FLOPs of one training step: 3x the forward (the backward pass costs about twice the forward) of the
    batch's images, the logits against every class, and the text tower over every prompt when it trains
    (a frozen text tower's features are computed once and cached)."""
    forward = batch * image + logits_flops(batch, prompts, embed) + (prompts * text_per_prompt if text_trains else 0)
    return 3 * forward


def logits_flops(batch: int, classes: int, embed: int) -> int:
    return 2 * batch * classes * embed


def clip_architecture(clip) -> dict:
    """The shapes that the FLOPs depend on, read from a built open_clip CLIP (ViT image tower only)."""
    from open_clip.transformer import VisionTransformer

    v = clip.visual
    if not isinstance(v, VisionTransformer):
        raise UserError(f"bench counts FLOPs for ViT image towers; this backbone's is a {type(v).__name__} "
                        "(use a ViT backbone such as ViT-B-16, tiny or tiny-test)")
    image, patch = _first(v.image_size), _first(v.patch_size)
    vision = dict(image_size=image, patch_size=patch, width=v.transformer.width, layers=v.transformer.layers,
                  mlp_width=v.transformer.resblocks[0].mlp.c_fc.out_features, embed=v.output_dim)
    t = clip.transformer
    text = dict(width=t.width, layers=t.layers, mlp_width=t.resblocks[0].mlp.c_fc.out_features,
                embed=int(clip.text_projection.shape[-1]) if clip.text_projection is not None else t.width)
    return {"vision": vision, "text": text}


def _first(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def text_flops(arch_text: dict, tokens: int) -> int:
    return tower_flops(Tower(tokens, **arch_text))


# Dense (no structured sparsity) peak TFLOP/s from the vendors' datasheets (docs/bench.md lists them). fp32 is
# the plain FP32 rate (not TF32): PyTorch runs fp32 matmuls without TF32 unless asked to. None: no such mode.
# Matched in order on the lower-cased torch.cuda.get_device_name(): every word must occur.
PEAKS: list[tuple[str, tuple[str, ...], dict[str, float | None]]] = [
    ("H200 NVL", ("h200", "nvl"), {"bf16": 835.5, "fp16": 835.5, "fp32": 60.0}),
    ("H200 SXM", ("h200",), {"bf16": 989.5, "fp16": 989.5, "fp32": 67.0}),
    ("H100 NVL", ("h100", "nvl"), {"bf16": 835.5, "fp16": 835.5, "fp32": 60.0}),
    ("H100 PCIe", ("h100", "pcie"), {"bf16": 756.5, "fp16": 756.5, "fp32": 51.0}),
    ("H100 SXM", ("h100",), {"bf16": 989.5, "fp16": 989.5, "fp32": 67.0}),
    ("A100", ("a100",), {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("L40S", ("l40s",), {"bf16": 362.05, "fp16": 362.05, "fp32": 91.6}),
    ("L40", ("l40",), {"bf16": 181.05, "fp16": 181.05, "fp32": 90.5}),
    ("L4", ("l4",), {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3}),
    ("A10", ("a10",), {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}),
    ("RTX A6000", ("rtx", "a6000"), {"bf16": 154.8, "fp16": 154.8, "fp32": 38.7}),
    ("RTX 4090", ("rtx", "4090"), {"bf16": 165.2, "fp16": 165.2, "fp32": 82.6}),
    ("RTX 3090", ("rtx", "3090"), {"bf16": 71.0, "fp16": 71.0, "fp32": 35.6}),
    ("V100 PCIe", ("v100", "pcie"), {"bf16": None, "fp16": 112.0, "fp32": 14.0}),
    ("V100 SXM2", ("v100",), {"bf16": None, "fp16": 125.0, "fp32": 15.7}),
    ("T4", ("t4",), {"bf16": None, "fp16": 65.0, "fp32": 8.1}),
]


def lookup_peak(device_name: str, precision: str) -> tuple[str, float] | None:
    """(table entry, dense peak TFLOP/s) for a device name and precision, or None when unknown. Words match
    whole tokens of the name ("a10" does not match "A100")."""
    words = set(device_name.lower().replace("-", " ").replace("_", " ").split())
    for label, keys, peaks in PEAKS:
        if all(k in words for k in keys):
            value = peaks.get(precision)
            return None if value is None else (label, value)
    return None

