import pytest

from cl_bench import registry
from cl_bench.config import make_config, parse_set, resolve_params
from cl_bench.errors import UserError


def _cfg(method="lora", scenario="mtil-micro", overrides=None, config_file=None):
    return make_config(method=registry.get_method(method), scenario=registry.get_scenario(scenario),
                       backbone=None, pretrained=None, seed=0, device="cpu", out="x",
                       config_file=config_file, overrides=overrides or {})


def test_layers_scenario_method_profile_file_set(tmp_path):
    cfg = _cfg()
    m = registry.get_method("lora")
    assert cfg.params["rank"] == m.PROFILE_DEFAULTS["micro"]["rank"]  # profile beats method default
    assert cfg.params["train_per_class"] == 200  # scenario default
    f = tmp_path / "c.yaml"
    f.write_text("rank: 3\nlr: 0.01\n")
    cfg = _cfg(config_file=str(f), overrides=parse_set(["lr=2e-3"]))
    assert cfg.params["rank"] == 3  # file beats defaults
    assert cfg.params["lr"] == 2e-3  # --set beats the file
    assert cfg.backbone == "tiny" and cfg.pretrained is None


def test_parse_set_types():
    d = parse_set(["lr=1e-4", "epochs=[5, 10]", "amp=false", "targets=[q,v]", "name=abc"])
    assert d == {"lr": 1e-4, "epochs": [5, 10], "amp": False, "targets": ["q", "v"], "name": "abc"}


def test_unknown_key_lists_valid_keys():
    with pytest.raises(UserError, match="unknown --set key.*nope.*valid keys: .*alpha"):
        _cfg(overrides={"nope": 1})


@pytest.mark.parametrize("key,value", [("rank", "big"), ("rank", 1.5), ("targets", 3), ("lr", "fast"),
                                       ("epochs", [1.5])])
def test_wrong_types_rejected(key, value):
    with pytest.raises(UserError, match="wrong type"):
        _cfg(overrides={key: value})


def test_int_promotes_to_float_and_epoch_lists_allowed():
    cfg = _cfg(overrides={"lr": 1, "epochs": [1, 2]})
    assert cfg.params["lr"] == 1.0 and isinstance(cfg.params["lr"], float)
    assert cfg.params["epochs"] == [1, 2]


def test_bad_set_syntax_and_bad_file(tmp_path):
    with pytest.raises(UserError, match="key=value"):
        parse_set(["lr"])
    with pytest.raises(UserError, match="not found"):
        _cfg(config_file=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="mapping"):
        _cfg(config_file=str(bad))


def test_config_is_frozen():
    cfg = _cfg()
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(TypeError):
        cfg.params["lr"] = 3


def test_resolve_params_direct():
    s, m = registry.get_scenario("cil-micro"), registry.get_method("finetune")
    p = resolve_params(s, m, {}, {"steps": 3})
    assert p["steps"] == 3 and p["iterations"] == m.PROFILE_DEFAULTS["micro"]["iterations"]


def test_cil_micro_uses_the_cil_loss_recipe_of_distillation_methods():
    mtil, cil = registry.get_scenario("mtil-micro"), registry.get_scenario("cil-micro")
    zscl, lwf = registry.get_method("zscl"), registry.get_method("lwf")
    p_mtil, p_cil = resolve_params(mtil, zscl, {}, {}), resolve_params(cil, zscl, {}, {})
    assert (p_mtil["w_image"], p_mtil["w_text"], p_mtil["w_l2"]) == (1.0, 1.0, 1.0)
    assert (p_cil["w_image"], p_cil["w_text"], p_cil["w_l2"]) == (5.0, 5.0, 0.0)
    assert p_cil["iterations"] == p_mtil["iterations"]  # same micro budget
    assert resolve_params(cil, lwf, {}, {})["w_image"] == 5.0 and resolve_params(mtil, lwf, {}, {})["w_text"] == 1.0
