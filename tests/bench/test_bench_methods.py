"""`cl-bench bench` figures of the methods on the tiny backbone with random weights (pytest-benchmark; run with
`tox -e bench`). The timed call is the whole bench; its measured img/s, FLOP/s and memory are in extra_info."""

import pytest
import torch

from cl_bench.bench import run_bench

torch.set_num_threads(2)


@pytest.mark.parametrize("method", ["finetune", "lora", "keeplora"])
def test_bench_method_on_tiny(benchmark, method):
    report = benchmark.pedantic(run_bench, kwargs=dict(backbone="tiny", pretrained="none", method=method,
                                                       batch_size=32, steps=10, warmup=2, device="cpu",
                                                       log=lambda *a: None), rounds=1, iterations=1)
    benchmark.extra_info.update(train_images_per_s=report["train"]["images_per_s"],
                                eval_images_per_s=report["eval"]["images_per_s"],
                                train_tflops=report["train"]["tflops"], peak_memory_mb=report["peak_memory_mb"])
