"""DDAS, MoE-Adapters' Distribution-Discriminative Auto-Selector (docs/methods-moe.md).

One small autoencoder per domain learns to reconstruct frozen image features of that domain: a "sink" trained
on generic reference images (TinyImageNet; the micro world's pre-training images) and one per trained task.
At test time the autoencoder with the lowest reconstruction error names the domain; the sink, or an error
above the threshold, means "unknown domain" and the image goes through the pre-trained CLIP (experts off).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SINK = "__reference__"  # key of the reference-data autoencoder


class AutoEncoder(nn.Module):
    """``Linear(D, code) -> ReLU -> Linear(code, D) -> Sigmoid`` on inputs in (0, 1) (the reference's shape)."""

    def __init__(self, d: int, code: int):
        super().__init__()
        self.enc = nn.Linear(d, code)
        self.dec = nn.Linear(code, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(F.relu(self.enc(u))))

    def errors(self, u: torch.Tensor) -> torch.Tensor:
        """Per-sample mean squared reconstruction error (N,)."""
        return ((self(u) - u) ** 2).mean(dim=1)


def ae_input(features: torch.Tensor) -> torch.Tensor:
    """Unit image embeddings -> (0, 1) inputs: scaled to unit RMS per coordinate, then a sigmoid (the reference
    feeds sigmoid(AlexNet conv5), raw activations of about that scale)."""
    f = F.normalize(features.float(), dim=-1)
    return torch.sigmoid(f * math.sqrt(f.shape[1]))


def train_autoencoder(batches, d: int, *, code: int, iterations: int, lr: float, weight_decay: float,
                      decay_every: int, seed: int, device="cpu") -> AutoEncoder:
    """Adam on the MSE over ``iterations`` batches drawn from ``batches()`` (an iterator factory of (N, D)
    inputs, restarted when exhausted); lr x0.1 every ``decay_every`` steps (the reference decays every 10
    epochs). Initialised from ``seed``, so the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = AutoEncoder(d, code).to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr, weight_decay=weight_decay)
    it = iter(batches())
    for step in range(iterations):
        try:
            u = next(it)
        except StopIteration:
            it = iter(batches())
            u = next(it)
        for g in opt.param_groups:
            g["lr"] = lr * 0.1 ** (step // max(decay_every, 1))
        loss = F.mse_loss(ae(u), u)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ae.eval()


@torch.no_grad()
def select(errors: dict[str, torch.Tensor], threshold: float, per_batch: bool) -> list[str | None]:
    """The domain of each sample from its reconstruction errors (key -> (N,)): the argmin key, or None (zero-
    shot) when it is the sink or its error exceeds ``threshold``. ``per_batch``: one decision for the whole
    batch on the batch-mean errors (the reference)."""
    keys = list(errors)
    E = torch.stack([errors[k] for k in keys], dim=1)  # (N, K)
    if per_batch:
        E = E.mean(0, keepdim=True).expand_as(E)
    best, idx = E.min(dim=1)
    return [None if keys[i] == SINK or b > threshold else keys[i] for b, i in zip(best.tolist(), idx.tolist())]
