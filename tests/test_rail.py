"""RAIL (docs/methods.md, rail) and the X-TAIL protocol: the recursive ridge update equals the closed form on
all data seen so far, the dual solves the kernel system, the fusion follows zero-shot's domain choice, and
both forms run on mtil-micro and xtail-micro."""

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_RUN

from cl_bench import registry
from cl_bench.config import make_config, parse_set
from cl_bench.methods.rail import rbf, rls_update
from cl_bench.protocols import TASK_AGNOSTIC
from cl_bench.results import load_results
from cl_bench.runner import Run


def test_recursive_ridge_equals_closed_form_on_all_data():
    g = torch.Generator().manual_seed(0)
    H, lam = 12, 0.1
    R, W = torch.eye(H, dtype=torch.float64) / lam, torch.zeros(H, 0, dtype=torch.float64)
    Phis, Ys = [], []
    for classes_before, n_new in ((0, 3), (3, 2)):  # two tasks; the second adds 2 classes
        C = classes_before + n_new
        W = torch.cat([W, W.new_zeros(H, C - W.shape[1])], dim=1)
        for _ in range(3):  # batches of 5
            Phi = torch.rand(5, H, generator=g, dtype=torch.float64)
            y = classes_before + torch.randint(n_new, (5,), generator=g)
            Y = F.one_hot(y, C).double()
            R, W = rls_update(R, W, Phi, Y)
            Phis.append(Phi)
            Ys.append(F.pad(Y, (0, 0)))
        Phi_all = torch.cat(Phis)
        Y_all = torch.cat([F.pad(y, (0, C - y.shape[1])) for y in Ys])
        closed = torch.linalg.solve(Phi_all.T @ Phi_all + lam * torch.eye(H, dtype=torch.float64), Phi_all.T @ Y_all)
        torch.testing.assert_close(W, closed, atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(R, torch.linalg.inv(Phi_all.T @ Phi_all + lam * torch.eye(H, dtype=torch.float64)))


def test_rbf_kernel_by_hand():
    x, X = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(rbf(x, X, 0.5), torch.tensor([[torch.exp(torch.tensor(-0.5)),
                                                              torch.exp(torch.tensor(-1.0))]]))


def _run(method, scenario, out, extra=()):
    cfg = make_config(method=registry.get_method(method), scenario=registry.get_scenario(scenario),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                      overrides=parse_set([*TINY_RUN, *extra]))
    run = Run(cfg, log=lambda *a: None)
    run.setup()
    return run


def test_fusion_follows_zero_shot_domain_choice(tmp_path):
    """Zero-shot's top class in a learned task: (1 - w) softmax + w adapter; otherwise zero-shot alone."""
    run = _run("rail-primal", "xtail-micro", tmp_path, ["hidden_dim=16"])
    m, clf = run.plugin, run.classifier
    m.task_cols = {"digits": (0, 2)}
    m.n_classes = 2
    m.scores = lambda feats: torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    clf.class_parts = [("digits", 2), ("colours", 2)]
    logits = torch.tensor([[3.0, 0.0, 1.0, 0.0],   # zero-shot says digits: fused
                           [0.0, 0.0, 5.0, 0.0]])  # zero-shot says colours (not learned): unchanged
    out = m._fuse(clf, torch.zeros(2, 4), logits)
    p = logits.softmax(-1)
    torch.testing.assert_close(out[0], 0.2 * p[0] + 0.8 * torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(out[1], p[1])


@pytest.mark.parametrize("scenario", ["mtil-micro", "xtail-micro"])
@pytest.mark.parametrize("method", ["rail-primal", "rail-dual"])
def test_rail_runs_two_tasks(method, scenario, tmp_path):
    run = _run(method, scenario, tmp_path, ["hidden_dim=64"] if method == "rail-primal" else [])
    res = run.execute()
    disk = load_results(run.path)
    assert disk["status"] == "finished" and len(disk["matrix"]) == 2
    assert disk["per_task"][0]["trainable_params"] == 0  # no gradient training
    assert set(run.plugin.task_cols) == {"digits", "colours"} and run.plugin.n_classes == 18
    # Learned with no forgetting: the adapter alone classifies the first task's training images as it did.
    assert res["matrix"][1][0] >= res["zero_shot"][0] - 1e-9 or method == "rail-dual"


def test_xtail_scores_every_task_over_all_classes(tmp_path):
    run = _run("zeroshot", "xtail-micro", tmp_path)
    built = run.built
    assert built.protocol is TASK_AGNOSTIC
    assert [n for _, n in built.eval_parts(0, 0)] == [10, 8]  # digits then colours, for every task
    assert built.eval_key(0, None) == built.eval_key(1, 1)
    labels = sorted({int(built.tasks[1].test[i][1]) for i in range(len(built.tasks[1].test))})
    assert labels[0] >= 10 and labels[-1] < 18  # colours' labels come after digits' ten classes
    res = run.execute()
    assert res["metrics"]["transfer"]["mean"] is not None
