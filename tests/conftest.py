import os
import tempfile
from pathlib import Path

import pytest
import torch

# Tests never touch the user's cache: the tiny-test backbone is pre-trained once per session here (unless
# CL_BENCH_TEST_CACHE points at a cache to reuse between sessions). The xdist workers inherit the variable
# from the controller, so they share one cache.
os.environ.setdefault("CL_BENCH_TEST_CACHE", tempfile.mkdtemp(prefix="clbench-cache-"))
os.environ["CL_BENCH_CACHE"] = os.environ["CL_BENCH_TEST_CACHE"]
torch.set_num_threads(min(2, os.cpu_count() or 1))

@pytest.fixture(scope="session")
def tiny_backbone():
    from cl_bench.backbone import load_backbone

    return load_backbone("tiny-test")


@pytest.fixture
def fresh_clip(tiny_backbone):
    """A copy of the pre-trained tiny-test CLIP that a test may modify."""
    import copy

    return copy.deepcopy(tiny_backbone.model)


@pytest.fixture
def out_dir(tmp_path) -> Path:
    return tmp_path / "results"
