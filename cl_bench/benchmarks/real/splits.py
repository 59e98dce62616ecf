"""Split and sample selection mechanics that do not depend on a dataset's format."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import torch


def reference_split_indices(n: int, seed: int = 42, train_fraction: float = 0.8) -> tuple[list, list]:
    """The reference 80/20 split of n samples: `random_split(ds, [int(0.8 * n), n - int(0.8 * n)],
    generator=torch.Generator().manual_seed(42))`. The reference passes integer lengths computed
    with `int()` (floor), so train is the first int(0.8 * n) entries of the permutation."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_train = int(train_fraction * n)
    return perm[:n_train], perm[n_train:]


def few_shot_indices(targets: Sequence[int], shots: int = 5, seed: int = 0) -> list[int]:
    """`shots` samples per class (all of a class that has fewer), chosen by `seed`; sorted indices.

    Each class's samples are ranked by a hash of (seed, class, index), so the choice is the same on
    every machine and library version and depends only on the labels, not on any RNG stream.
    """
    if shots < 1:
        raise ValueError("shots must be at least 1")
    members = defaultdict(list)
    for index, target in enumerate(targets):
        members[int(target)].append(index)

    def rank(cls: int, index: int) -> bytes:
        return hashlib.blake2b(f"{seed}:{cls}:{index}".encode(), digest_size=8).digest()

    chosen = []
    for cls, indices in members.items():
        chosen += sorted(indices, key=lambda i: rank(cls, i))[:shots]
    return sorted(chosen)
