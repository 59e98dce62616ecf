import pytest
import torch

from cl_bench.subspace import energy_rank, grow_basis, principal_basis, project_out, spectrum, weight_basis


def _with_spectrum(D, m, svals, seed=0):
    """A D x m matrix with known left singular vectors (returned) and singular values."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(m, len(svals), generator=g, dtype=torch.float64))
    return U[:, : len(svals)] @ torch.diag(torch.tensor(svals, dtype=torch.float64)) @ V.T, U


def test_energy_rank_strict_threshold():
    e = torch.tensor([50.0, 30.0, 15.0, 5.0])  # cumulative ratios .5 .8 .95 1.0
    assert energy_rank(e, 0.8) == 1  # strictly below 0.8: only the first
    assert energy_rank(e, 0.81) == 2
    assert energy_rank(e, 0.99) == 3
    assert energy_rank(e, 0.1) == 0


def test_first_time_basis_keeps_exactly_the_rule_directions():
    # energies 16, 9, 4, 1 (total 30): cumulative .533 .833 .967 1
    M, U = _with_spectrum(6, 20, [4.0, 3.0, 2.0, 1.0])
    P = principal_basis(M, 0.9)
    assert P.shape[1] == 2
    assert torch.allclose((P.T @ U[:, :2]).abs().sum(0), torch.ones(2, dtype=P.dtype), atol=1e-6)
    assert principal_basis(M, 0.01).shape[1] == 1  # at least one direction


def test_gram_and_matrix_statistics_agree():
    M, _ = _with_spectrum(6, 20, [4.0, 3.0, 2.0, 1.0])
    Um, em = spectrum(M, "matrix")
    Ug, eg = spectrum(M @ M.T, "gram")
    assert torch.allclose(em[:4], eg[:4], atol=1e-8)
    assert torch.allclose((Um[:, :4] * Ug[:, :4]).sum(0).abs(), torch.ones(4, dtype=M.dtype), atol=1e-6)
    assert principal_basis(M, 0.9).shape == principal_basis(M @ M.T, 0.9, "gram").shape


@pytest.mark.parametrize("kind", ["matrix", "gram"])
def test_incremental_growth_adds_until_threshold(kind):
    # M has energy 16, 9, 4, 1 along U0..U3; P already spans U0 (16/30 = .533 inside).
    M, U = _with_spectrum(6, 20, [4.0, 3.0, 2.0, 1.0])
    stat = M if kind == "matrix" else M @ M.T
    P = U[:, :1].clone()
    # threshold .9: add U1 (.833 < .9) then U2 (.967 >= .9) -> stop; 2 columns added
    P2, added = grow_basis(P, stat, 0.9, kind)
    assert added == 2 and P2.shape[1] == 3
    assert torch.allclose(P2[:, 0], P[:, 0])
    span = P2 @ P2.T
    assert torch.allclose(span @ U[:, 1], U[:, 1], atol=1e-6) and torch.allclose(span @ U[:, 2], U[:, 2], atol=1e-6)
    assert torch.allclose(span @ U[:, 3], torch.zeros(6, dtype=M.dtype), atol=1e-6)
    # threshold .5: already satisfied by P -> nothing added
    P3, added = grow_basis(P, stat, 0.5, kind)
    assert added == 0 and P3.shape[1] == 1


def test_growth_is_capped_at_D():
    M, U = _with_spectrum(4, 10, [4.0, 3.0, 2.0, 1.0])
    P = U[:, :3].clone()
    P2, _ = grow_basis(P, M, 1.0 + 1e-9)
    assert P2.shape[1] <= 4


def test_project_out_is_orthogonal_to_the_basis():
    g = torch.Generator().manual_seed(0)
    P, _ = torch.linalg.qr(torch.randn(8, 3, generator=g))
    X = torch.randn(8, 5, generator=g)
    Y = project_out(X, P)
    assert torch.allclose(P.T @ Y, torch.zeros(3, 5), atol=1e-6)
    assert torch.allclose(project_out(Y, P), Y, atol=1e-6)  # idempotent
    assert project_out(X, None) is X


def test_weight_basis_sides():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 7, generator=g)  # (out, in)
    out_side, in_side = weight_basis(W, 0.99, "out"), weight_basis(W, 0.99, "in")
    assert out_side.shape[0] == 5 and in_side.shape[0] == 7
    U, S, Vh = torch.linalg.svd(W)
    assert torch.allclose((in_side[:, 0] @ Vh[0]).abs(), torch.tensor(1.0), atol=1e-5)
    with pytest.raises(ValueError):
        weight_basis(W, 0.9, "sideways")
