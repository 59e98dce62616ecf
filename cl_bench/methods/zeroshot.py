"""Zero-shot CLIP: no training, the reference every method's Transfer is compared with."""

from cl_bench.api import CLMethod


class ZeroShot(CLMethod):
    NAME = "zeroshot"
    DESCRIPTION = "the pre-trained model, evaluated after every task without any training"
    PAPER = "Radford et al., CLIP (ICML 2021)"
    TRAINS = False
