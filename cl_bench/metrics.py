"""Continual-learning metrics as pure functions of an accuracy matrix (docs/protocols.md P9, P12).

All accuracies are percentages. ``R[j][i]`` is the accuracy on task ``i`` after training task ``j``;
rows and columns are both in training order. The zero-shot row (before any training) is *not* part of
``R``. Cells that were not evaluated are ``None`` (CIL: tasks not seen yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean

Matrix = Sequence[Sequence[float | None]]


def _square(R: Matrix) -> int:
    T = len(R)
    if T == 0 or any(len(row) != T for row in R):
        raise ValueError(f"accuracy matrix must be T x T with T > 0, got {[len(r) for r in R]}")
    return T


def mtil_metrics(R: Matrix) -> dict:
    """Transfer / Avg. / Last per task and their means, exactly as ZSCL's and KeepLoRA's code.

    Transfer_i = mean_{j<i} R[j][i] (undefined for task 0; mean over tasks 1..T-1),
    Avg_i = mean_j R[j][i] over the whole column, Last_i = R[T-1][i]. Means use unrounded values.
    """
    T = _square(R)
    transfer = [None] + [mean(R[j][i] for j in range(i)) for i in range(1, T)]
    avg = [mean(R[j][i] for j in range(T)) for i in range(T)]
    last = list(R[T - 1])
    return {
        "transfer": {"per_task": transfer, "mean": mean(transfer[1:]) if T > 1 else None},
        "avg": {"per_task": avg, "mean": mean(avg)},
        "last": {"per_task": last, "mean": mean(last)},
        "bwt": backward_transfer(R),
    }


def backward_transfer(R: Matrix) -> float | None:
    """Standard BWT (Lopez-Paz & Ranzato): mean over i < T-1 of R[T-1][i] - R[i][i]."""
    T = _square(R)
    if T < 2:
        return None
    return mean(R[T - 1][i] - R[i][i] for i in range(T - 1))


def cil_step_accuracies(R: Matrix, test_sizes: Sequence[int]) -> list[float]:
    """A_t: sample-weighted accuracy on the union of the test sets of tasks 0..t after step t."""
    T = _square(R)
    out = []
    for t in range(T):
        n = sum(test_sizes[: t + 1])
        out.append(sum(R[t][j] * test_sizes[j] for j in range(t + 1)) / n)
    return out


def cil_metrics(R: Matrix, test_sizes: Sequence[int]) -> dict:
    """Class-incremental Avg. (mean of A_t over all steps, base step included) and Last (A_N),
    plus continuum's logged `forgetting` and `bwt` (docs/protocols.md P13) after the last step."""
    steps = cil_step_accuracies(R, test_sizes)
    return {
        "steps": steps,
        "avg": mean(steps),
        "last": steps[-1],
        "forgetting": continuum_forgetting(R),
        "continuum_bwt": continuum_bwt(R),
        "bwt": backward_transfer(R),
    }


def continuum_forgetting(R: Matrix) -> float | None:
    """continuum's `forgetting` after k = len(R) steps; like continuum it skips task k-2."""
    k = len(R)
    if k < 2:
        return None
    total = 0.0
    for j in range(k - 2):
        total += max(R[l][j] for l in range(j, k - 2)) - R[k - 1][j]
    return total / (k - 1)


def continuum_bwt(R: Matrix) -> float | None:
    """continuum's `bwt`: 2/(k(k-1)) * sum_{i=1}^{k-1} sum_{j=0}^{i-2} (R[i][j] - R[j][j])."""
    k = len(R)
    if k < 2:
        return None
    total = sum(R[i][j] - R[j][j] for i in range(1, k) for j in range(i - 1))
    return 2 * total / (k * (k - 1))
