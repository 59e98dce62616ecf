"""Sequential LoRA ("Seq-LoRA", docs/methods.md, lora): a fresh LoRA pair per task on attention q, k, v, o of
both towers, both factors trained, merged into the weights after the task. KeepLoRA without its projection
and gradient initialisation."""

from cl_bench import lora
from cl_bench.api import MICRO_BUDGET, CLMethod
from cl_bench.schedules import one_cycle

# The LoRA family (lora, olora, inflora, keeplora) on the micro scenarios: the shared budget, rank 8, and a
# learning rate tuned on the validation split (docs/micro-world.md).
MICRO_LORA = MICRO_BUDGET | {"rank": 8, "lr": 4e-3}


class LoRAFamily(CLMethod):
    """What the LoRA methods share: AdamW over the trainable adapter factors with KeepLoRA's OneCycle
    schedule, and merging the adapters into the weights after each task."""

    adapters: dict[str, lora.LoRAAdapter] = {}

    def param_groups(self, strategy):
        return [p for p in lora.adapter_parameters(self.adapters) if p.requires_grad]

    def make_scheduler(self, optimizer, total_steps, lr):
        return one_cycle(optimizer, total_steps, lr)

    def after_training_exp(self, strategy, **kw):
        lora.merge(self.classifier.clip)
        self.adapters = {}


class SeqLoRA(LoRAFamily):
    NAME = "lora"
    DESCRIPTION = "Seq-LoRA: a new LoRA pair per task on q/k/v/o of both towers, merged after each task"
    PAPER = "Hu et al., LoRA (ICLR 2022); the sequential-merge baseline of docs/methods.md LR1"
    # KeepLoRA's budget and optimizer (AdamW 1e-3, wd 0.01, OneCycle per step, batch 64) with alpha = 2r
    # (s = 2): KeepLoRA's s = 1/16 with a zero-initialised B barely learns (docs/methods.md LR2).
    DEFAULTS = {"rank": 16, "alpha": 32.0, "targets": ["q", "k", "v", "o"], "lr": 1e-3, "weight_decay": 0.01,
                "batch_size": 64, "epochs": 5}
    PROFILE_DEFAULTS = {"micro": MICRO_LORA | {"alpha": 16.0}}
    SWITCHES = ("targets", "rank", "alpha")

    def before_training_exp(self, strategy, **kw):
        self.adapters = lora.attach(self.classifier.clip, rank=self.params["rank"], alpha=self.params["alpha"],
                                    targets=self.params["targets"])
        for prm in lora.adapter_parameters(self.adapters):
            prm.requires_grad_(True)
