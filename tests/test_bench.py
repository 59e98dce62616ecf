"""`cl-bench bench`: the report on tiny-test, the FLOPs formulas on hand-computed configs, the peak table,
precision selection and random-weight backbones. Speed itself is measured in tests/bench, never asserted."""

import json

import pytest
import torch

from cl_bench import bench, flops
from cl_bench.backbone import load_backbone
from cl_bench.cli import main
from cl_bench.errors import UserError

# tiny-test: image 32, patch 8 (16 patches + class token = 17 tokens), width 32, 2 layers, MLP 128, embed 32.
TINY_TEST_VISION = dict(image_size=32, patch_size=8, width=32, layers=2, mlp_width=128, embed=32)


def test_bench_writes_its_report_on_tiny_test(tmp_path, capsys):
    out = tmp_path / "b" / "lora.json"
    assert main(["bench", "--backbone", "tiny-test", "--method", "lora", "--batch-size", "8", "--steps", "2",
                 "--warmup", "1", "--classes", "3", "--device", "cpu", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["schema"] == bench.SCHEMA and rep["method"] == "lora" and rep["backbone"]["pretrained"] == "none"
    assert (rep["precision"], rep["precision_requested"], rep["compile"]) == ("fp32", "auto", False)
    assert rep["backbone"]["architecture"]["vision"] == TINY_TEST_VISION
    assert rep["train"]["images_per_s"] > 0 and rep["eval"]["images_per_s"] > 0
    assert rep["train"]["text_tower_trains"] and rep["train"]["trainable_params"] > 0  # LoRA on both towers
    assert rep["flops"]["image_forward"] == flops.vit_flops(**TINY_TEST_VISION) > 0
    assert rep["flops"]["train_step"] > 3 * 8 * rep["flops"]["image_forward"]  # + logits + text tower
    assert rep["train"]["tflops"] > 0 and rep["eval"]["tflops"] > 0
    assert rep["train"]["mfu"] is None and rep["eval"]["mfu"] is None and rep["peak_tflops"] is None  # CPU
    assert rep["peak_memory_mb"] > 0 and rep["peak_memory_kind"] == "process peak RSS"
    assert rep["params"]["batch_size"] == 8 and rep["params"]["iterations"] == 3
    assert "lora" in capsys.readouterr().out


def test_bench_peak_flag_gives_mfu_and_eval_only_methods_have_no_train_figures():
    rep = bench.run_bench(backbone="tiny-test", method="zeroshot", batch_size=4, steps=1, warmup=1, classes=2,
                          device="cpu", peak_tflops=2.0, log=lambda *a: None)
    assert rep["train"] is None and "train_step" not in rep["flops"]
    assert rep["peak_source"] == "--peak-tflops" and rep["eval"]["mfu"] == pytest.approx(rep["eval"]["tflops"] / 2)


def test_vit_flops_by_hand():
    patch_embed = 2 * 16 * (3 * 8 * 8) * 32  # 16 patches, each a (192,) x (192, 32) matmul
    qkv, out = 2 * 17 * 32 * 96, 2 * 17 * 32 * 32
    scores = values = 2 * 17 * 17 * 32
    mlp = 2 * 17 * 32 * 128 + 2 * 17 * 128 * 32
    proj = 2 * 32 * 32
    expected = patch_embed + 2 * (qkv + out + scores + values + mlp) + proj
    assert expected == 1_108_224
    assert flops.vit_flops(**TINY_TEST_VISION) == expected


def test_text_and_train_step_flops_by_hand():
    # 9 tokens, width 32, 2 layers, MLP 128, projection to 32
    layer = 2 * 9 * 32 * 96 + 2 * 9 * 32 * 32 + 2 * (2 * 9 * 9 * 32) + 2 * (2 * 9 * 32 * 128)
    text = flops.text_flops(dict(width=32, layers=2, mlp_width=128, embed=32), 9)
    assert text == 2 * layer + 2 * 32 * 32 == 465_152
    step = dict(batch=4, image=1000, text_per_prompt=text, prompts=3, embed=32)
    logits = 2 * 4 * 3 * 32
    assert flops.train_step_flops(**step, text_trains=False) == 3 * (4 * 1000 + logits)
    assert flops.train_step_flops(**step, text_trains=True) == 3 * (4 * 1000 + logits + 3 * text)


def test_vit_b16_random_weights_offline_and_its_flops():
    b = load_backbone("ViT-B-16", "none")
    assert (b.pretrained, b.image_size) == ("none", 224)
    arch = flops.clip_architecture(b.model)
    assert arch["vision"] == dict(image_size=224, patch_size=16, width=768, layers=12, mlp_width=3072, embed=512)
    assert arch["text"] == dict(width=512, layers=12, mlp_width=2048, embed=512)
    n, w = 197, 768
    assert flops.vit_flops(**arch["vision"]) == (2 * 196 * 768 * 768 + 12 * (24 * n * w * w + 4 * n * n * w)
                                                  + 2 * 768 * 512)  # about 35.1 GFLOPs (17.6 G multiply-adds)


def test_tiny_random_weights_need_no_pretraining(monkeypatch, tmp_path):
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    b = load_backbone("tiny", "none")
    assert b.pretrained == "none" and not (tmp_path / "backbones").exists()
    assert b.model.visual.transformer.width == 128 and b.tokenizer(["a"]).shape == (1, 24)


@pytest.mark.parametrize("name, precision, expected", [
    ("NVIDIA H200", "bf16", ("H200 SXM", 989.5)),
    ("NVIDIA H200 NVL", "bf16", ("H200 NVL", 835.5)),
    ("NVIDIA H100 80GB HBM3", "fp16", ("H100 SXM", 989.5)),
    ("NVIDIA H100 PCIe", "fp32", ("H100 PCIe", 51.0)),
    ("NVIDIA A100-SXM4-80GB", "bf16", ("A100", 312.0)),
    ("NVIDIA A10", "bf16", ("A10", 125.0)),
    ("NVIDIA L40S", "fp32", ("L40S", 91.6)),
    ("NVIDIA GeForce RTX 4090", "bf16", ("RTX 4090", 165.2)),
    ("Tesla V100-SXM2-32GB", "fp16", ("V100 SXM2", 125.0)),
    ("Tesla V100-PCIE-16GB", "fp32", ("V100 PCIe", 14.0)),
    ("Tesla V100-SXM2-32GB", "bf16", None),  # no bf16 on Volta
    ("Some Future GPU", "bf16", None),
])
def test_peak_table_lookup(name, precision, expected):
    assert flops.lookup_peak(name, precision) == expected


def test_precision_selection():
    """cl_bench/precision.py: auto is fp32 on CPU, fp16 needs CUDA, only fp16 uses a GradScaler."""
    from cl_bench import precision

    cpu = torch.device("cpu")
    assert precision.resolve("auto", cpu) == precision.resolve("fp32", cpu) == "fp32"
    assert precision.resolve("bf16", cpu) == "bf16"  # CPU autocast supports bf16
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        precision.resolve("fp16", cpu)
    with pytest.raises(UserError, match="not one of"):
        precision.resolve("half", cpu)
    assert precision.needs_scaler("fp16") and not precision.needs_scaler("bf16")
    x = torch.randn(4, 4)
    with precision.autocast("bf16", cpu):
        assert (x @ x).dtype == torch.bfloat16
    with precision.autocast("fp32", cpu):
        assert (x @ x).dtype == torch.float32


def test_bench_refuses_bad_input(tmp_path, capsys):
    common = ["bench", "--backbone", "tiny-test", "--method", "lora", "--device", "cpu"]
    assert main([*common, "--steps", "0", "--out", str(tmp_path / "x.json")]) == 2
    assert "--steps must be" in capsys.readouterr().err
    assert main([*common, "--precision", "fp16", "--out", str(tmp_path / "x.json")]) == 2
    assert "fp16 needs a CUDA device" in capsys.readouterr().err
    with pytest.raises(UserError, match="is a folder"):
        bench.write_report({}, tmp_path)
