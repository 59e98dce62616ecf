"""O-LoRA, InfLoRA, ZSCL, LwF and WiSE-FT: their math on hand-checked cases and a 2-task run each."""

import math

import pytest
import torch
from helpers import TINY_RUN

from cl_bench import lora, registry
from cl_bench.config import make_config, parse_set
from cl_bench.distill import WeightEnsemble, interpolate_, soft_ce, zscl_distillation
from cl_bench.methods.inflora import design_A, threshold_schedule
from cl_bench.methods.olora import orthogonality_penalty
from cl_bench.results import load_results
from cl_bench.runner import Run

FAST = {"olora": ["iterations=2", "rank=2"], "inflora": ["iterations=2", "rank=2"],
        "zscl": ["iterations=4", "we_freq=2"],
        "lwf": ["iterations=3"], "wise-ft": ["iterations=3"]}


def _run(method, out, extra=()):
    cfg = make_config(method=registry.get_method(method), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                      overrides=parse_set([*TINY_RUN, *FAST[method], *extra]))
    run = Run(cfg, log=lambda *a: None)
    run.setup()
    return run


@pytest.mark.parametrize("method", sorted(FAST))
def test_method_runs_two_tasks(method, tmp_path):
    run = _run(method, tmp_path)
    run.execute()
    disk = load_results(run.path)
    assert disk["status"] == "finished" and len(disk["matrix"]) == 2
    assert disk["per_task"][0]["trainable_params"] > 0
    assert disk["switches"], "a method records its switches"


# -- O-LoRA -------------------------------------------------------------------------------------------------
def test_olora_penalty_zero_first_task_and_hand_value():
    a = lora.LoRAAdapter(3, 3, 2, 1.0)
    with torch.no_grad():
        a.A.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]))
    assert float(orthogonality_penalty({}, {"m": a})) == 0.0
    old = torch.tensor([[1.0], [1.0], [0.0]])  # one old rank-1 A (in x r_old)
    # old^T A = [1*1 + 1*0 + 0*1, 1*0 + 1*2 + 0*(-1)] = [1, 2] -> L1 = 3
    assert float(orthogonality_penalty({"m": old}, {"m": a}).detach()) == pytest.approx(3.0)


def test_olora_keeps_old_A_across_tasks(tmp_path):
    run = _run("olora", tmp_path)
    run.execute()
    A = run.plugin.old_A
    assert set(k.split(".")[-1] for k in A) == {"q", "v"}  # the reference's targets
    assert all(v.shape[1] == 2 * 2 for v in A.values())  # two tasks x rank 2, stacked


# -- InfLoRA -------------------------------------------------------------------------------------------------
def test_inflora_A_lies_outside_the_memory():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 8, generator=g)
    C = X.T @ X
    M, _ = torch.linalg.qr(torch.randn(8, 3, generator=g))
    A = design_A(C, M, 2)
    assert torch.allclose(M.T @ A, torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(A.T @ A, torch.eye(2) / 3, atol=1e-5)  # orthonormal columns scaled by 1/sqrt(3)


def test_inflora_threshold_schedule():
    assert threshold_schedule(0, 10, 0.95, 1.0) == 0.95
    assert threshold_schedule(5, 10, 0.95, 1.0) == pytest.approx(0.975)
    assert threshold_schedule(10, 10, 0.95, 1.0) == pytest.approx(1.0)


def test_inflora_memory_grows(tmp_path):
    run = _run("inflora", tmp_path)
    res = run.execute()
    sizes = res["per_task"][1]["extra"]["memory_sizes"]
    assert sizes and all(v >= 1 for v in sizes.values())
    assert res["per_task"][1]["extra"]["threshold"] == pytest.approx(0.95 + 0.05 * 1 / 2)


# -- ZSCL / LwF / WiSE-FT ------------------------------------------------------------------------------------
def test_weight_ensemble_is_the_mean_of_snapshots():
    snaps = [{"w": torch.tensor([float(i), 2.0 * i])} for i in range(5)]
    we = WeightEnsemble(snaps[0])
    for s in snaps[1:]:
        we.update(s)
    assert torch.allclose(we.avg["w"], torch.stack([s["w"] for s in snaps]).mean(0))


def test_distillation_matches_hand_computation():
    z_s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_t = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    txt = torch.tensor([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    scale, T = 10.0, 2.0
    l_img, l_txt = zscl_distillation(z_s, z_t, txt, scale, T)

    def manual(tl, sl):  # rows of teacher/student logits
        tot = 0.0
        for t_row, s_row in zip(tl, sl):
            p = [math.exp(v / T) for v in t_row]
            p = [v / sum(p) for v in p]
            logz = math.log(sum(math.exp(v / T) for v in s_row))
            tot += -sum(pk * (sv / T - logz) for pk, sv in zip(p, s_row))
        return T * T * tot / len(tl)

    lt = [[scale * sum(a * b for a, b in zip(zt, tx)) for tx in txt.tolist()] for zt in z_t.tolist()]
    ls = [[scale * sum(a * b for a, b in zip(zs, tx)) for tx in txt.tolist()] for zs in z_s.tolist()]
    assert float(l_img) == pytest.approx(manual(lt, ls), rel=1e-5)
    assert float(l_txt) == pytest.approx(manual(list(zip(*lt)), list(zip(*ls))), rel=1e-5)
    assert float(soft_ce(torch.zeros(1, 3), torch.zeros(1, 3), 1.0)) == pytest.approx(math.log(3))


def test_zscl_teacher_never_changes_and_student_does(tmp_path):
    run = _run("zscl", tmp_path)
    teacher_before = {k: v.clone() for k, v in run.plugin.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in run.classifier.clip.state_dict().items()}
    run.execute()
    assert all(torch.equal(v, run.plugin.teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert any(not torch.equal(v, run.classifier.clip.state_dict()[k]) for k, v in student_before.items())


def test_wise_ft_interpolation_exact():
    p = {"w": torch.nn.Parameter(torch.tensor([1.0, 3.0]))}
    interpolate_(p, {"w": torch.tensor([0.0, -2.0])}, 0.8)
    assert torch.allclose(p["w"].data, torch.tensor([0.8, 2.0]))


def test_zscl_needs_reference_files_for_real_backbones(tmp_path):
    from cl_bench.errors import UserError
    from cl_bench.methods.zscl import ReferenceData

    class Ctx:
        backbone = type("B", (), {"name": "ViT-B-16"})()
        config = type("C", (), {"seed": 0})()

    params = {"ref_batch_size": 4, "ref_images": "", "ref_captions": "", "ref_count": 10}
    with pytest.raises(UserError, match="ref_images"):
        ReferenceData(Ctx(), params)
    with pytest.raises(UserError, match="reference images not found"):
        ReferenceData(Ctx(), params | {"ref_images": str(tmp_path / "none")})
