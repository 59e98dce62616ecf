"""Sequential LoRA ("Seq-LoRA", METHODS.md F): a fresh LoRA pair per task on attention q, k, v, o of both
towers, both factors trained, merged into the weights after the task. KeepLoRA without its projection
and gradient initialisation."""

from cl_bench import lora
from cl_bench.api import MICRO_BUDGET, Method, MethodPlugin
from cl_bench.schedules import one_cycle

# The LoRA family (lora, olora, inflora, keeplora) on the micro scenarios: the shared budget, rank 8, and a
# learning rate tuned on the validation split (docs/micro-world.md).
MICRO_LORA = MICRO_BUDGET | {"rank": 8, "lr": 4e-3}


class LoRAPlugin(MethodPlugin):
    def before_training_exp(self, strategy, **kw):
        self.adapters = lora.attach(strategy.model.clip, rank=self.p["rank"], alpha=self.p["alpha"],
                                    targets=self.p["targets"])
        for prm in lora.adapter_parameters(self.adapters):
            prm.requires_grad_(True)

    def configure_optimizers(self, strategy, total_steps):
        import torch

        params = [p for p in lora.adapter_parameters(self.adapters) if p.requires_grad]
        lr = self.task_lr(strategy)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=self.p["weight_decay"])
        return opt, one_cycle(opt, total_steps, lr)

    def after_training_exp(self, strategy, **kw):
        lora.merge(strategy.model.clip)
        strategy.model.invalidate()
        self.adapters = {}

    def switches(self):
        return {"targets": list(self.p["targets"]), "rank": self.p["rank"], "alpha": self.p["alpha"]}


METHOD = Method(
    name="lora",
    description="Seq-LoRA: a new LoRA pair per task on q/k/v/o of both towers, merged after each task",
    paper="Hu et al., LoRA (ICLR 2022); the sequential-merge baseline of METHODS.md F",
    # KeepLoRA's budget and optimizer (AdamW 1e-3, wd 0.01, OneCycle per step, batch 64) with alpha = 2r
    # (s = 2): KeepLoRA's s = 1/16 with a zero-initialised B barely learns (METHODS.md F).
    defaults={"rank": 16, "alpha": 32.0, "targets": ["q", "k", "v", "o"], "lr": 1e-3, "weight_decay": 0.01,
              "batch_size": 64, "epochs": 5},
    profile_defaults={"micro": MICRO_LORA | {"alpha": 16.0}},
    plugins=lambda ctx: [LoRAPlugin(ctx)],
)
