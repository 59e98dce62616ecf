"""A minimal outside plugin: a method that trains only the final LayerNorm of the image tower, and a
one-task scenario reusing cl-bench's micro world. Nothing in cl_bench/ knows about it."""

from cl_bench.api import CLMethod, Scenario
from cl_bench.benchmarks.micro import build_mtil


class LayerNormOnly(CLMethod):
    NAME = "demo-headonly"
    DESCRIPTION = "demo plugin: tunes the image tower's last LayerNorm"
    PAPER = "none (test plugin)"
    DEFAULTS = {"iterations": 3, "lr": 1e-3, "batch_size": 16}

    def before_training_exp(self, strategy, **kw):
        for p in self.classifier.clip.visual.ln_post.parameters():
            p.requires_grad_(True)

    def after_training_exp(self, strategy, **kw):
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def switches(self):
        return {"trained": "visual.ln_post"}


SCENARIO = Scenario(
    name="demo-colours",
    description="demo plugin: the micro colours domain as a single task",
    protocol="mtil", version="demo-1", profile="micro",
    defaults={"tasks": ["colours"], "train_per_class": 4, "test_per_class": 3},
    build=build_mtil, default_backbone="tiny-test", default_pretrained=None,
)
