"""A minimal outside plugin: a method that trains only the final LayerNorm of the image tower, and a
one-task scenario reusing cl-bench's micro world. Nothing in cl_bench/ knows about it."""

from cl_bench.benchmarks.micro import build_mtil

from cl_bench.api import Method, MethodPlugin, Scenario


class LayerNormOnly(MethodPlugin):
    def before_training_exp(self, strategy, **kw):
        for p in strategy.model.clip.visual.ln_post.parameters():
            p.requires_grad_(True)

    def after_training_exp(self, strategy, **kw):
        for p in strategy.model.parameters():
            p.requires_grad_(False)
        strategy.model.invalidate()

    def switches(self):
        return {"trained": "visual.ln_post"}


METHOD = Method(
    name="demo-headonly",
    description="demo plugin: tunes the image tower's last LayerNorm",
    paper="none (test plugin)",
    defaults={"iterations": 3, "lr": 1e-3, "batch_size": 16},
    plugins=lambda ctx: [LayerNormOnly(ctx)],
)

SCENARIO = Scenario(
    name="demo-colours",
    description="demo plugin: the micro colours domain as a single task",
    protocol="mtil", version="demo-1", profile="micro",
    defaults={"tasks": ["colours"], "train_per_class": 4, "test_per_class": 3},
    build=build_mtil, default_backbone="tiny-test", default_pretrained=None,
)
