"""MoE-Adapters: router top-k, activate-freeze, DDAS routing, a 2-task run and resume (docs/methods-moe.md)."""

import pytest
import torch
from helpers import TINY_RUN

from cl_bench import ddas, moe, registry
from cl_bench.config import make_config, parse_set
from cl_bench.errors import UserError
from cl_bench.methods.moe_adapters import MoEAdapters
from cl_bench.results import load_results
from cl_bench.runner import Run

# tiny-test sizes: few steps, small autoencoder budgets.
FAST = [*TINY_RUN, "iterations=2", "ddas_iterations=10", "ddas_ref_iterations=10", "ddas_ref_count=128"]


def _run(out, extra=(), **kw):
    cfg = make_config(method=registry.get_method("moe-adapters"), scenario=registry.get_scenario("mtil-micro"),
                      backbone="tiny-test", pretrained=None, seed=0, device="cpu", out=str(out),
                      overrides=parse_set([*FAST, *extra]))
    run = Run(cfg, log=lambda *a: None)
    return run, run.execute(**kw)


# -- router ------------------------------------------------------------------------------------------------
def test_top_k_gates_keep_exactly_k_experts_summing_to_one():
    logits = torch.randn(50, 22)
    g = moe.top_k_gates(logits, 2)
    assert ((g > 0).sum(1) == 2).all()
    assert torch.allclose(g.sum(1), torch.ones(50))
    top2 = logits.topk(2, dim=1).indices
    assert torch.equal(g.gather(1, top2) > 0, torch.ones(50, 2, dtype=torch.bool))
    # the two gates are the softmax of the two largest logits
    assert torch.allclose(g.gather(1, top2), torch.softmax(logits.gather(1, top2), dim=1))


def test_block_mixes_the_chosen_experts_per_sample_and_skips_zero_shot_rows():
    torch.manual_seed(0)
    b = moe.MoEBlock(8, experts=4, routers=2, top_k=2, width=3, dropout=0.0, scale=0.1).eval()
    for e in b.experts:
        torch.nn.init.normal_(e.up.weight)
    with torch.no_grad():
        b.w_gate[0].normal_()
        b.w_gate[1].normal_()
    h = torch.randn(5, 3, 8)
    b.route = torch.tensor([0, -1, 1, 0, -1])
    y = b.mixture(h)
    for n, r in enumerate(b.route.tolist()):
        if r < 0:
            assert torch.equal(y[n], torch.zeros(3, 8))
            continue
        g = moe.top_k_gates(h[n:n + 1, 0] @ b.w_gate[r], 2)[0]
        want = sum(g[e] * b.experts[e](h[n:n + 1])[0] for e in range(4) if g[e] > 0)
        assert torch.allclose(y[n], want, atol=1e-6)


# -- activate-freeze ---------------------------------------------------------------------------------------
def test_activate_freeze_freezes_the_most_used_experts_of_each_block(tiny_backbone, out_dir):
    run, res = _run(out_dir, ["ddas=false"])
    m = run.plugin
    usage = res["per_task"][1]["extra"]["usage"]  # counts of the last task
    first = res["per_task"][0]["extra"]
    assert first["newly_frozen"] == 2 * len(m.blocks)
    for key, counts in usage.items():
        top = sorted(range(len(counts)), key=lambda e: (-counts[e], e))[:2]
        assert set(top) <= set(m.frozen[key])  # the last task's top 2 are frozen too
        assert sum(counts) > 0
    # task 1 trained every expert not frozen after task 0, and router 1 only
    per_block = 2 * 32 * 64 + 64 + 32
    n_blocks, E = len(m.blocks), m.params["experts"]
    routers = 2 * 32 * E * n_blocks
    assert res["per_task"][0]["trainable_params"] == n_blocks * E * per_block + routers
    assert res["per_task"][1]["trainable_params"] == (n_blocks * E - 2 * n_blocks) * per_block + routers


def test_frozen_experts_and_other_routers_do_not_change(tiny_backbone, out_dir):
    run, _ = _run(out_dir, ["ddas=false"], stop_after=1)
    m = run.plugin
    frozen = {k: {e: m.blocks[k].experts[e].up.weight.clone() for e in v} for k, v in m.frozen.items()}
    router0 = {k: b.w_gate[0].clone() for k, b in m.blocks.items()}
    run.execute(resume=True)  # task 1 trains
    for k, ws in frozen.items():
        for e, w in ws.items():
            assert torch.equal(m.blocks[k].experts[e].up.weight, w)
    assert all(torch.equal(b.w_gate[0], router0[k]) for k, b in m.blocks.items())
    assert any(not torch.equal(b.w_gate[1], torch.zeros_like(b.w_gate[1])) for b in m.blocks.values())


def test_parameter_count_formula_matches_the_modules(fresh_clip):
    blocks = moe.attach(fresh_clip, ["visual", "text"], experts=5, routers=3, top_k=2, width=7, dropout=0.1,
                        scale=0.1)
    actual = sum(p.numel() for b in blocks.values() for p in b.parameters())
    want = sum(sum(moe.count_params(32, 2, experts=5, routers=3, width=7).values()) for _ in range(2))
    assert actual == want


# -- DDAS --------------------------------------------------------------------------------------------------
def _identity_ae(d, keep: list[int]) -> ddas.AutoEncoder:
    """Reconstructs coordinates ``keep`` of u = sigmoid(x) exactly-ish (through a ReLU code) and outputs 0.5
    elsewhere: low error on inputs that vary only there."""
    ae = ddas.AutoEncoder(d, d)
    with torch.no_grad():
        ae.enc.weight.zero_()
        ae.enc.bias.zero_()
        ae.dec.weight.zero_()
        ae.dec.bias.zero_()
        for i in keep:  # code_i = relu(u_i) = u_i; dec: logit(u) ~ linear around 0.5 is poor, so use 4 * (u - .5)
            ae.enc.weight[i, i] = 1.0
            ae.dec.weight[i, i] = 4.0
            ae.dec.bias[i] = -2.0
    return ae


def test_ddas_select_routes_to_the_lowest_error_domain_or_zero_shot():
    errors = {ddas.SINK: torch.tensor([0.05, 0.01, 0.05, 0.05]),
              "0": torch.tensor([0.01, 0.02, 0.09, 0.08]),
              "1": torch.tensor([0.03, 0.03, 0.02, 0.07])}
    assert ddas.select(errors, threshold=0.06, per_batch=False) == ["0", None, "1", None]
    # sample 3: its best (the sink's 0.05) -> zero-shot; with a threshold below 0.02 everything is zero-shot
    assert ddas.select(errors, threshold=0.015, per_batch=False) == ["0", None, None, None]
    # batch decision on the mean errors: sink 0.04, task 0 0.05, task 1 0.0375 -> task 1 for all
    assert ddas.select(errors, threshold=0.06, per_batch=True) == ["1"] * 4


def test_ddas_routes_constructed_features_through_the_method(tiny_backbone, out_dir):
    """Autoencoders built by hand: the sink reconstructs nothing, task 0's reconstructs coordinates 0-15 and
    task 1's 16-31. Features living in 0-15 go to router 0, in 16-31 to router 1, anything else to zero-shot."""
    cfg = make_config(method=MoEAdapters, scenario=registry.get_scenario("mtil-micro"), backbone="tiny-test",
                      pretrained=None, seed=0, device="cpu", out=str(out_dir),
                      overrides=parse_set([*FAST, "ddas_decision=sample", "ddas_threshold=0.02"]))
    run = Run(cfg, log=lambda *a: None)
    run.setup()  # the method object, untrained
    m, d = run.plugin, 32
    m.autoencoders = {ddas.SINK: _identity_ae(d, []).state_dict(),
                      "0": _identity_ae(d, list(range(16))).state_dict(),
                      "1": _identity_ae(d, list(range(16, 32))).state_dict()}
    m.trained = [0, 1]
    m._aes = m.autoencoder_modules("cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(4, d)
    x[0, :16] = torch.randn(16, generator=g) * 3
    x[1, 16:] = torch.randn(16, generator=g) * 3
    x[2] = torch.randn(32, generator=g) * 3
    x[3, :16] = torch.randn(16, generator=g) * 3
    assert m.routes_from_features(torch.sigmoid(x)).tolist() == [0, 1, -1, 0]
    m.params = dict(m.params, ddas_decision="batch")  # one decision for the batch: its mean errors favour 0
    assert m.routes_from_features(torch.sigmoid(x)).tolist() in ([0] * 4, [-1] * 4)
    m.params = dict(m.params, ddas_threshold=1.0)
    assert m.routes_from_features(torch.sigmoid(x)).tolist() == [0] * 4


def test_per_sample_routes_give_each_row_its_own_task_logits(tiny_backbone, out_dir):
    """A mixed batch (route 0, zero-shot, route 1) gets the same logits per row as three single-route batches."""
    run, _ = _run(out_dir, ["ddas=false", "lr=0.05"])
    m, clf = run.plugin, run.classifier
    task = run.built.tasks[0]
    clf.set_prompts(task.eval_prompts, key=task.name)
    clf.eval()
    x = torch.stack([task.test[i][0] for i in range(3)])
    want = []
    for i, r in enumerate([0, -1, 1]):
        m._text, m.routes = {}, torch.tensor([r])
        m.set_routes(m.routes, None if r < 0 else r)
        with torch.no_grad():
            want.append(clf(x[i:i + 1])[0])
    m._text, m.routes = {}, torch.tensor([0, -1, 1])
    m.set_routes(m.routes, 0)
    with torch.no_grad():
        got = clf(x)
    for i in range(3):
        assert torch.allclose(got[i], want[i], atol=1e-5)
    assert not torch.allclose(want[0], want[1], atol=1e-4)  # the experts do change the logits
    m.routes = None
    m.set_routes(None, None)


# -- runs --------------------------------------------------------------------------------------------------
def test_two_tasks_write_a_finished_results_file(tiny_backbone, out_dir):
    run, res = _run(out_dir)
    disk = load_results(run.path)
    assert disk["status"] == "finished" and disk["tasks"] == ["digits", "colours"]
    assert len(disk["matrix"]) == 2 and all(0 <= v <= 100 for row in disk["matrix"] for v in row)
    assert disk["switches"]["ddas"] is True and disk["switches"]["experts"] == 22
    routing = disk["per_task"][1]["extra"]["routing"]
    assert sum(routing["digits"].values()) == disk["test_sizes"][0]


def test_resume_equals_an_uninterrupted_run(tmp_path, tiny_backbone):
    _, full = _run(tmp_path / "a")
    run, part = _run(tmp_path / "b", stop_after=1)
    assert len(part["matrix"]) == 1 and run.ckpt.exists()
    run2, resumed = _run(tmp_path / "b", resume=True)
    assert resumed["status"] == "finished"
    assert resumed["matrix"] == full["matrix"]
    assert resumed["per_task"][1]["extra"]["usage"] == full["per_task"][1]["extra"]["usage"]
    assert resumed["per_task"][1]["trainable_params"] == full["per_task"][1]["trainable_params"]


def test_cil_profile_is_the_two_expert_shared_router_variant(tiny_backbone, out_dir):
    cfg = make_config(method=MoEAdapters, scenario=registry.get_scenario("cil-micro"), backbone="tiny-test",
                      pretrained=None, seed=0, device="cpu", out=str(out_dir),
                      overrides=parse_set(["train_per_class=4", "test_per_class=3", "steps=2", "iterations=2"]))
    run = Run(cfg, log=lambda *a: None)
    res = run.execute()
    assert res["status"] == "finished"
    sw = res["switches"]
    assert (sw["experts"], sw["top_k"], sw["router_per_task"], sw["activate_freeze"], sw["ddas"]) == \
        (2, 2, False, False, False)
    assert all(len(b.w_gate) == 1 for b in run.plugin.blocks.values())


def test_missing_tinyimagenet_is_a_one_line_error(tmp_path):
    from types import SimpleNamespace

    ctx = SimpleNamespace(backbone=SimpleNamespace(name="ViT-B-16"))
    m = MoEAdapters.__new__(MoEAdapters)
    m.ctx, m.params = ctx, {"data_root": str(tmp_path)}
    with pytest.raises(UserError, match="tiny-imagenet-200"):
        m.reference_dataset(check_only=True)


def test_bad_top_k_is_a_user_error():
    with pytest.raises(UserError, match="top_k"):
        MoEAdapters._check(MoEAdapters.DEFAULTS | {"top_k": 30})
