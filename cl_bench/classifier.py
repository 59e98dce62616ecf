"""The CLIP classifier: logits = logit_scale * cos(image, text) over the current classes' prompts."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn


def encode_text(clip: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's CLIP.encode_text, but only up to the longest prompt (last EOT position).

    Under the causal mask no position after a prompt's EOT token can change the EOT output, so cutting
    the padding is exact and saves most of the text tower's work (context 77 vs ~10-20 real tokens).
    """
    eot = tokens.argmax(dim=-1)  # EOT has the largest token id, as in open_clip's argmax pooling
    L = int(eot.max()) + 1
    tokens = tokens[:, :L]
    cast = clip.transformer.get_cast_dtype()
    x = clip.token_embedding(tokens).to(cast) + clip.positional_embedding[:L].to(cast)
    mask = clip.attn_mask[:L, :L] if clip.attn_mask is not None else None
    x = clip.transformer(x, attn_mask=mask)
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot]
    proj = clip.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def class_prompts(classnames, templates) -> list[list[str]]:
    """Per class, every template filled with its name (one template = the single-prompt convention)."""
    return [[t.format(c) for t in templates] for c in classnames]


class CLIPClassifier(nn.Module):
    """Wraps an open_clip CLIP as an image classifier over a settable class set.

    Text features are cached and recomputed whenever a text-tower parameter changed (a weight written in
    place, an adapter attached or merged: see ``_text_state``), so methods never invalidate them by hand;
    while the text tower trains they are recomputed with gradients on every forward. Prompt ensembles
    average the normalised embeddings of a class's prompts and re-normalise (ZSCL/MoE evaluation). Extra
    logit terms (e.g. KeepLoRA+'s cosine head) are added through ``logit_hooks``.
    """

    def __init__(self, clip: nn.Module, tokenizer):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self._tokens: torch.Tensor | None = None
        self._groups: list[int] = []
        self._cache: torch.Tensor | None = None
        self._cache_state: list = []
        self.class_key: str = ""
        self.class_parts: list[tuple[str, int]] = []
        self.logit_hooks: list = []  # callables (classifier, image_features, logits) -> logits

    # -- classes -------------------------------------------------------------------------------------
    def set_prompts(self, prompts: list[list[str]], key: str = "", parts: list[tuple[str, int]] | None = None) -> None:
        """``key`` names the class set; ``parts`` splits it into consecutive (task key, classes) blocks
        (default: one block, the whole set under ``key``)."""
        flat = [p for group in prompts for p in group]
        self._tokens = self.tokenizer(flat)
        self._groups = [len(g) for g in prompts]
        self.class_key = key
        self.class_parts = list(parts) if parts is not None else [(key, len(prompts))]
        if sum(n for _, n in self.class_parts) != len(prompts):
            raise ValueError(f"class parts {self.class_parts} do not add up to {len(prompts)} classes")
        self.invalidate()

    def invalidate(self) -> None:
        """Forget cached text features (only needed for changes that bypass autograd's version counter,
        such as writes through ``.data``)."""
        self._cache = None

    def _text_state(self) -> list:
        """The text tower's parameters with their in-place version counters: any optimizer step, ``copy_``,
        merge or load bumps a counter, and attaching or merging an adapter changes the parameter list.
        Weak references (not ids) so that a freed parameter's address reused by a new one cannot match."""
        return [(weakref.ref(p), p._version) for n, p in self.clip.named_parameters() if not n.startswith("visual.")]

    def _cache_valid(self) -> bool:
        now = self._text_state()
        return len(now) == len(self._cache_state) and all(
            a() is not None and a() is b() and va == vb for (a, va), (b, vb) in zip(self._cache_state, now))

    @property
    def tokens(self) -> torch.Tensor:
        """Token ids of the current class prompts (every prompt of every class, class-major)."""
        if self._tokens is None:
            raise RuntimeError("set_prompts() must be called before classifying")
        return self._tokens

    @property
    def num_classes(self) -> int:
        return len(self._groups)

    def text_trainable(self) -> bool:
        return any(p.requires_grad for n, p in self.clip.named_parameters() if not n.startswith("visual."))

    def text_features(self) -> torch.Tensor:
        """(C, E) L2-normalised class embeddings for the current prompts."""
        if self._tokens is None:
            raise RuntimeError("set_prompts() must be called before classifying")
        fresh = self.training and torch.is_grad_enabled() and self.text_trainable()
        if self._cache is not None and not fresh and self._cache_valid():
            return self._cache
        device = self.clip.logit_scale.device
        feats = F.normalize(encode_text(self.clip, self._tokens.to(device)), dim=-1)
        if any(g != 1 for g in self._groups):
            feats = torch.stack([F.normalize(chunk.mean(0), dim=-1)
                                 for chunk in feats.split(self._groups)])
        if not fresh:
            self._cache, self._cache_state = feats.detach(), self._text_state()
            feats = self._cache
        return feats

    # -- forward -------------------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.encode_image(images), dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        img = self.image_features(images)
        txt = self.text_features()
        logits = self.clip.logit_scale.exp() * img @ txt.to(img.dtype).T
        for hook in self.logit_hooks:
            logits = hook(self, img, logits)
        return logits
