"""InfLoRA ported to CLIP (METHODS.md D, D.3): per task, the frozen down-projection A is designed from the
input covariance of the adapted projections, projected out of the DualGPM memory of earlier tasks; only B
trains; the pair is merged after the task and the memory grows with the task's features.

The memory is kept in its 'remove' form (a basis of protected input directions, grown GPM-style with the
threshold eps_t = lambda_b + (lambda_e - lambda_b) t / T). The reference switches to a 'retain' basis (the
complement) once more than D/2 directions are protected; both forms project C onto the same free
space, so only the bookkeeping differs (recorded as switch ``memory: remove-basis``).
"""

from __future__ import annotations

import math

import torch

from cl_bench import lora
from cl_bench.api import Method, MethodPlugin
from cl_bench.attention_stats import StatAccumulator, record_attention_inputs
from cl_bench.subspace import grow_basis, project_out, spectrum

from .lora import MICRO_LORA, LoRAPlugin


def threshold_schedule(t: int, T: int, lamb: float, lame: float) -> float:
    """eps_t = lambda_b + (lambda_e - lambda_b) * t / T, t 0-based (D.2)."""
    return lamb + (lame - lamb) * t / T


def design_A(C: torch.Tensor, memory: torch.Tensor | None, rank: int) -> torch.Tensor:
    """A (in x r) = top-r eigenvectors of the covariance with the protected directions removed, / sqrt 3."""
    if memory is not None:
        C = project_out(C, memory)  # C - M M^T C
        C = project_out(C.T, memory).T  # symmetric: the same on the other side keeps it PSD
    U, _ = spectrum(C, "gram")
    return U[:, :rank] / math.sqrt(3)


class InfLoRAPlugin(MethodPlugin):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.memory: dict[str, torch.Tensor] = {}  # stream key ("visual.3.qkv") -> protected basis
        self.adapters: dict[str, lora.LoRAAdapter] = {}
        self.report: dict = {}

    def streams(self) -> tuple[str, ...]:
        return ("qkv", "o") if "o" in self.p["targets"] else ("qkv",)

    @torch.no_grad()
    def covariances(self, strategy) -> StatAccumulator:
        """Input covariance per (tower, block, stream) over the task's images (all tokens) and prompts."""
        clf = strategy.model
        acc = StatAccumulator("covariance")
        data = strategy.experience.dataset
        with record_attention_inputs(clf.clip, acc, towers=("visual",), streams=self.streams()):
            for x, _ in strategy.loader(data, shuffle=False, batch_size=self.p["batch_size"]):
                with torch.autocast("cuda", dtype=torch.float16, enabled=strategy.use_amp):
                    clf.clip.encode_image(x.to(strategy.device))
        with record_attention_inputs(clf.clip, acc, towers=("text",), streams=self.streams()):
            clf.clip.encode_text(clf._tokens.to(strategy.device))
        return acc

    def before_training_exp(self, strategy, **kw):
        clip = strategy.model.clip
        acc = self.covariances(strategy)
        r = self.p["rank"]
        self.adapters = lora.attach(clip, rank=r, alpha=float(r), targets=self.p["targets"], init="zeros")  # s = 1
        for key, a in self.adapters.items():
            tower, block, t = key.split(".")
            stream = f"{tower}.{block}.{'o' if t == 'o' else 'qkv'}"
            with torch.no_grad():
                a.A.copy_(design_A(acc.values[stream], self.memory.get(stream), r).to(a.A))
            a.A.requires_grad_(False)
            a.B.requires_grad_(True)
        strategy.model.invalidate()

    configure_optimizers = LoRAPlugin.configure_optimizers

    def after_training_exp(self, strategy, **kw):
        lora.merge(strategy.model.clip)
        self.adapters = {}
        strategy.model.invalidate()
        t, T = strategy.experience.current_experience, len(self.ctx.scenario.tasks)
        eps = threshold_schedule(t, T, self.p["lambda_b"], self.p["lambda_e"])
        acc = self.covariances(strategy)  # with the trained model (D.1)
        for key, C in acc.values.items():
            self.memory[key], _ = grow_basis(self.memory.get(key), C, eps, "gram")
        self.report = {"threshold": eps, "memory_sizes": {k: int(v.shape[1]) for k, v in self.memory.items()}}

    def task_report(self):
        return self.report

    def switches(self):
        return {"targets": list(self.p["targets"]), "rank": self.p["rank"], "lambda_b": self.p["lambda_b"],
                "lambda_e": self.p["lambda_e"], "memory": "remove-basis", "A_scale": "1/sqrt(3)"}

    def state_dict(self):
        return {"memory": {k: v.cpu() for k, v in self.memory.items()}}

    def load_state_dict(self, state):
        self.memory = {k: v.to(self.ctx.device) for k, v in state["memory"].items()}


METHOD = Method(
    name="inflora",
    description="InfLoRA: A designed from the input covariance outside the DualGPM memory, B trained, merged",
    paper="Liang & Li, InfLoRA (CVPR 2024); reference liangyanshuo/InfLoRA",
    # Reference k and v, r = 10, lambda_b 0.95 -> lambda_e 1.0; KeepLoRA's optimizer for comparability (D.3).
    defaults={"rank": 10, "targets": ["k", "v"], "lambda_b": 0.95, "lambda_e": 1.0, "lr": 1e-3,
              "weight_decay": 0.01, "batch_size": 64, "epochs": 5},
    profile_defaults={"micro": MICRO_LORA},
    plugins=lambda ctx: [InfLoRAPlugin(ctx)],
)
