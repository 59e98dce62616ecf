"""Zero-shot CLIP: no training, the reference every method's Transfer is compared with."""

from cl_bench.api import Method, MethodPlugin


class ZeroShotPlugin(MethodPlugin):
    pass


METHOD = Method(
    name="zeroshot",
    description="the pre-trained model, evaluated after every task without any training",
    paper="Radford et al., CLIP (ICML 2021)",
    defaults={},
    plugins=lambda ctx: [ZeroShotPlugin(ctx)],
    trains=False,
)
