"""Subspace math shared by KeepLoRA and InfLoRA: energy thresholds, projection and GPM-style growth.

A subspace is kept as a basis ``P`` (D x k) with (approximately) orthonormal columns. A feature statistic
is either a *representation matrix* ``M`` (D x m; its energies are squared singular values) or a *Gram /
covariance matrix* ``C = sum x x^T`` (D x D; its energies are eigenvalues). Both have the same left
singular vectors for the same data, so every function takes ``kind="matrix"`` or ``kind="gram"``.
"""

from __future__ import annotations

import torch


def _fp32(x: torch.Tensor) -> torch.Tensor:
    """Decompositions run in fp32 at least (statistics may arrive in fp16 from autocast)."""
    return x if x.dtype == torch.float64 else x.float()


def spectrum(M: torch.Tensor, kind: str = "matrix") -> tuple[torch.Tensor, torch.Tensor]:
    """(U, energies) of a statistic, energies sorted descending."""
    M = _fp32(M)
    if kind == "matrix":
        U, S, _ = torch.linalg.svd(M, full_matrices=False)
        return U, S**2
    if kind == "gram":
        evals, evecs = torch.linalg.eigh((M + M.T) / 2)  # ascending
        return evecs.flip(1), evals.flip(0).clamp_min(0)
    raise ValueError(f"kind must be 'matrix' or 'gram', got {kind!r}")


def energy_rank(energies: torch.Tensor, threshold: float) -> int:
    """Number of leading directions whose cumulative energy ratio is strictly below ``threshold``
    (the reference's first-time rule: the kept subspace holds a little *less* than ``threshold``)."""
    total = energies.sum()
    if total <= 0:
        return 0
    ratio = torch.cumsum(energies / total, 0)
    return int((ratio < threshold).sum())


def principal_basis(M: torch.Tensor, threshold: float, kind: str = "matrix") -> torch.Tensor:
    """First-time basis: the top max(k, 1) directions by ``energy_rank`` (docs/methods.md C6)."""
    U, e = spectrum(M, kind)
    return U[:, : max(energy_rank(e, threshold), 1)].contiguous()


def weight_basis(W: torch.Tensor, threshold: float, side: str = "out") -> torch.Tensor:
    """Principal subspace of a pre-trained weight W (out, in) by energy.

    ``side='out'`` keeps W's left singular vectors (output space), as KeepLoRA's MTIL code does (docs/methods.md KL13);
    ``side='in'`` keeps the right singular vectors (input space, the geometrically consistent choice).
    """
    if side not in ("out", "in"):
        raise ValueError(f"side must be 'out' or 'in', got {side!r}")
    return principal_basis(W if side == "out" else W.T, threshold, "matrix")


def project_out(X: torch.Tensor, P: torch.Tensor | None) -> torch.Tensor:
    """Remove from X's columns their component in span(P): X - P P^T X (acts on X's rows' space)."""
    if P is None or P.shape[1] == 0:
        return X
    P = P.to(X.dtype)
    return X - P @ (P.T @ X)


def grow_basis(P: torch.Tensor | None, M: torch.Tensor, threshold: float, kind: str = "matrix",
               max_cols: int | None = None) -> tuple[torch.Tensor, int]:
    """GPM update (docs/methods.md C6): add residual directions of M outside span(P) until the fraction of
    M's energy inside the grown subspace reaches ``threshold``. Returns (new basis, columns added).

    With no basis yet, this is the first-time rule (energy strictly below the threshold, at least one).
    New columns are not re-orthonormalised against P, as in the reference (they come from a residual
    that is already orthogonal to it).
    """
    if P is None or P.shape[1] == 0:
        B = principal_basis(M, threshold, kind)
        return B, B.shape[1]
    M, P = _fp32(M), P.to(_fp32(M).dtype)
    _, e_all = spectrum(M, kind)
    total = e_all.sum()
    if kind == "matrix":
        R = M - P @ (P.T @ M)
    else:
        Q = torch.eye(M.shape[0], dtype=M.dtype, device=M.device) - P @ P.T
        R = Q @ M @ Q
    U, e_res = spectrum(R, kind)
    acc = float((total - e_res.sum()) / total) if total > 0 else 1.0
    k = 0
    while k < len(e_res) and acc < threshold:
        acc += float(e_res[k] / total)
        k += 1
    if k == 0:
        return P, 0
    out = torch.cat([P, U[:, :k]], dim=1)
    D = M.shape[0]
    out = out[:, : (max_cols or D)]
    return out, out.shape[1] - P.shape[1]
