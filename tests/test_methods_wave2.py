"""MagMax and NuSA-CL: their math on constructed tensors, and 2-task runs on tiny-test (docs/methods-wave2.md)."""

import pytest
import torch
from helpers import TINY_RUN

from cl_bench import lora, registry
from cl_bench.config import make_config, parse_set
from cl_bench.errors import UserError
from cl_bench.methods.magmax import fold_max_magnitude, max_magnitude
from cl_bench.methods.nusa import null_basis
from cl_bench.results import load_results
from cl_bench.runner import Run

FAST = {"magmax": [], "nusa-cl": ["rank=8"]}  # tiny-test is 32 wide: r = 8 leaves 24 kept directions


def _run(method, out, extra=()):
    cfg = make_config(method=registry.get_method(method), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                      overrides=parse_set([*TINY_RUN, "iterations=2", *FAST[method], *extra]))
    run = Run(cfg, log=lambda *a: None)
    run.setup()
    return run


def _weights(run) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in run.classifier.clip.named_parameters()}


@pytest.mark.parametrize("method", ["magmax", "nusa-cl"])
def test_runs_two_tasks_and_writes_a_finished_results_file(method, tmp_path):
    run = _run(method, tmp_path)
    run.execute()
    disk = load_results(run.path)
    assert disk["status"] == "finished" and disk["tasks"] == ["digits", "colours"]
    assert len(disk["matrix"]) == 2 and all(0 <= v <= 100 for row in disk["matrix"] for v in row)
    assert disk["switches"] and disk["per_task"][1]["extra"]
    n = disk["per_task"][0]["trainable_params"]
    if method == "nusa-cl":  # q, k, v, o x 2 blocks x 2 towers, an 8 x 8 core each
        assert n == 16 * 8 * 8
    else:  # the image tower only
        assert n == sum(p.numel() for k, p in run.classifier.clip.named_parameters() if k.startswith("visual."))
    assert not run.ckpt.exists()


@pytest.mark.parametrize("method,bad", [("magmax", "towers=text"), ("nusa-cl", "null_rule=smallest"),
                                        ("nusa-cl", "targets=[q,mlp]")])
def test_bad_switch_is_a_user_error(method, bad, tmp_path):
    with pytest.raises(UserError, match=bad.split("=")[0]):
        _run(method, tmp_path, [bad])


# -- MagMax -------------------------------------------------------------------------------------------------
def test_magmax_merge_is_the_per_entry_maximum_by_magnitude():
    taus = [torch.tensor([1.0, -3.0, 0.5, 2.0, 0.0]),
            torch.tensor([-2.0, 1.0, -0.5, -2.0, 0.0]),
            torch.tensor([0.5, 2.5, -0.1, 1.0, -1e-3])]
    # by hand: |-2| wins; |-3| wins; 0.5 / -0.5 tie -> the later task; 2 / -2 tie -> the later task; -1e-3
    expected = torch.tensor([-2.0, -3.0, -0.5, -2.0, -1e-3])
    assert torch.equal(max_magnitude(taus), expected)
    running = None
    for tau in taus:
        running = fold_max_magnitude(running, tau)
    assert torch.equal(running, expected)


def test_magmax_running_merge_equals_the_all_at_once_merge():
    g = torch.Generator().manual_seed(0)
    taus = [torch.randint(-3, 4, (7, 5), generator=g).float() for _ in range(6)]  # many exact ties
    running = None
    for t, tau in enumerate(taus, 1):
        running = fold_max_magnitude(running, tau)
        assert torch.equal(running, max_magnitude(taus[:t]))


def test_magmax_evaluates_the_merge_and_trains_from_the_sequential_weights(tmp_path):
    run = _run("magmax", tmp_path, ["merge_coef=0.5"])
    theta0 = _weights(run)
    run.execute(stop_after=1)
    seq1, after1 = dict(run.plugin.sequential), _weights(run)
    visual = [n for n in theta0 if n.startswith("visual.")]
    for n in visual:  # what task 1 is evaluated with: theta_0 + 0.5 * tau_1
        assert torch.allclose(after1[n], theta0[n] + 0.5 * (seq1[n] - theta0[n]), atol=1e-6)
    assert any(not torch.equal(seq1[n], theta0[n]) for n in visual)
    for n in theta0:
        if not n.startswith("visual."):
            assert torch.equal(after1[n], theta0[n])  # towers=visual: the text tower never changes
    run.plugin.before_training_exp(run.strategy)  # the next task starts from theta_1, not from the merge
    assert all(torch.equal(p, seq1[n]) for n, p in run.plugin.trained().items())
    run.plugin.after_training_exp(run.strategy)  # undo: restore the merge
    run.execute(resume=True)
    seq2, final = run.plugin.sequential, _weights(run)
    for n in visual:
        merged = max_magnitude([seq1[n] - theta0[n], seq2[n] - theta0[n]])
        assert torch.allclose(final[n], theta0[n] + 0.5 * merged, atol=1e-6)


def test_magmax_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = _run("magmax", tmp_path / "a")
    res_full = full.execute()
    part = _run("magmax", tmp_path / "b")
    part.execute(stop_after=1)
    assert part.ckpt.exists()
    resumed = _run("magmax", tmp_path / "b")  # a fresh process: STATE comes from the checkpoint
    res = resumed.execute(resume=True)
    assert res["status"] == "finished" and res["matrix"] == res_full["matrix"]
    assert all(torch.equal(resumed.plugin.sequential[n], full.plugin.sequential[n]) for n in full.plugin.sequential)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[n], b[n]) for n in a)


# -- NuSA-CL ------------------------------------------------------------------------------------------------
def _high_energy(W: torch.Tensor, k_null: int):
    """The kept (high-energy) singular directions of W from an independent SVD: all but the last k_null."""
    U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
    keep = S.numel() - k_null
    return U[:, :keep], Vh[:keep].T


def test_nusa_update_lies_in_the_low_energy_subspace():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(40, 24, generator=g)
    U, V, _ = null_basis(W, "rank", 6, 0.0)
    assert U.shape == (40, 6) and V.shape == (24, 6)
    dW = U @ torch.randn(6, 6, generator=g) @ V.T
    Uk, Vk = _high_energy(W, 6)
    assert dW.norm() > 1
    assert (Uk.T @ dW.double()).abs().max() < 1e-5  # orthogonal to every kept output direction
    assert (dW.double() @ Vk).abs().max() < 1e-5  # and to every kept input direction


def test_nusa_energy_rule_takes_the_directions_beyond_the_threshold():
    g = torch.Generator().manual_seed(2)
    Q1, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    Q2, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    s = torch.tensor([10.0, 5.0, 1.0, 0.1, 0.01])
    W = Q1 @ torch.diag(s) @ Q2.T
    # energies 100, 25, 1, 0.01, 1e-4: the first two hold 99.2% >= 99%, so the last three are the null space
    U, V, share = null_basis(W, "energy", 0, 0.99)
    assert U.shape[1] == 3
    assert share == pytest.approx((1 + 0.01 + 1e-4) / (126 + 0.01 + 1e-4), rel=1e-4)
    assert torch.allclose((U @ U.T).abs(), (Q1[:, 2:] @ Q1[:, 2:].T).abs(), atol=1e-5)
    assert torch.allclose((V @ V.T).abs(), (Q2[:, 2:] @ Q2[:, 2:].T).abs(), atol=1e-5)
    assert null_basis(W, "energy", 2, 0.99)[0].shape[1] == 2  # rank caps the count
    assert null_basis(W, "energy", 0, 0.5)[0].shape[1] == 4


def test_nusa_task_update_lies_in_the_null_space_of_the_weights_it_started_from(tmp_path):
    run = _run("nusa-cl", tmp_path, ["lr=0.05"])
    run.execute(stop_after=1)
    before = _weights(run)
    blocks_before = _attention_blocks(run.classifier.clip)
    run.execute(resume=True)
    after, blocks_after = _weights(run), _attention_blocks(run.classifier.clip)
    attention = {n for n in before if n.endswith(("in_proj_weight", "out_proj.weight")) and ".attn." in n}
    for n in before:
        if n not in attention:
            assert torch.equal(before[n], after[n]), n  # only q/k/v/o weights change
    moved = 0.0
    for key, W in blocks_before.items():
        dW = (blocks_after[key] - W).double()
        Uk, Vk = _high_energy(W, 8)
        assert (Uk.T @ dW).abs().max() < 1e-5, key
        assert (dW @ Vk).abs().max() < 1e-5, key
        moved = max(moved, float(dW.norm()))
    assert moved > 1e-3  # task 2 did change the weights
    assert load_results(run.path)["per_task"][1]["extra"]["leakage_max"] < 1e-5


def _attention_blocks(clip) -> dict[str, torch.Tensor]:
    out = {}
    for tower, _, i, mha in lora.attention_modules(clip):
        for t, W in zip("qkvo", [*mha.in_proj_weight.chunk(3, dim=0), mha.out_proj.weight]):
            out[f"{tower}.{i}.{t}"] = W.detach().clone()
    return out
