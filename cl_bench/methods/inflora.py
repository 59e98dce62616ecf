"""InfLoRA ported to CLIP (docs/methods.md IL1): per task, the frozen down-projection A is designed from the
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
from cl_bench.attention_stats import StatAccumulator
from cl_bench.subspace import grow_basis, project_out, spectrum

from .lora import MICRO_LORA, LoRAFamily


def threshold_schedule(t: int, T: int, lamb: float, lame: float) -> float:
    """eps_t = lambda_b + (lambda_e - lambda_b) * t / T, t 0-based."""
    return lamb + (lame - lamb) * t / T


def design_A(C: torch.Tensor, memory: torch.Tensor | None, rank: int) -> torch.Tensor:
    """A (in x r) = top-r eigenvectors of the covariance with the protected directions removed, / sqrt 3."""
    if memory is not None:
        C = project_out(C, memory)  # C - M M^T C
        C = project_out(C.T, memory).T  # symmetric: the same on the other side keeps it PSD
    U, _ = spectrum(C, "gram")
    return U[:, :rank] / math.sqrt(3)


class InfLoRA(LoRAFamily):
    NAME = "inflora"
    DESCRIPTION = "InfLoRA: A designed from the input covariance outside the DualGPM memory, B trained, merged"
    PAPER = "Liang & Li, InfLoRA (CVPR 2024); reference liangyanshuo/InfLoRA"
    # Reference k and v, r = 10, lambda_b 0.95 -> lambda_e 1.0; KeepLoRA's optimizer for comparability.
    DEFAULTS = {"rank": 10, "targets": ["k", "v"], "lambda_b": 0.95, "lambda_e": 1.0, "lr": 1e-3,
                "weight_decay": 0.01, "batch_size": 64, "epochs": 5}
    PROFILE_DEFAULTS = {"micro": MICRO_LORA}
    SWITCHES = ("targets", "rank", "lambda_b", "lambda_e")
    STATE = ("memory",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.memory: dict[str, torch.Tensor] = {}  # stream key ("visual.3.qkv") -> protected basis
        self.adapters: dict[str, lora.LoRAAdapter] = {}
        self.report: dict = {}

    def streams(self) -> tuple[str, ...]:
        return ("qkv", "o") if "o" in self.params["targets"] else ("qkv",)

    def covariances(self, strategy) -> StatAccumulator:
        """Input covariance per (tower, block, stream) over the task's images (all tokens) and prompts."""
        images = strategy.loader(strategy.experience.dataset, shuffle=False, batch_size=self.params["batch_size"])
        return self.attention_statistics(strategy, "covariance", images, streams=self.streams())

    def before_training_exp(self, strategy, **kw):
        clip = self.classifier.clip
        acc = self.covariances(strategy)
        r = self.params["rank"]
        self.adapters = lora.attach(clip, rank=r, alpha=float(r), targets=self.params["targets"], init="zeros")  # s=1
        for key, a in self.adapters.items():
            tower, block, t = key.split(".")
            stream = f"{tower}.{block}.{'o' if t == 'o' else 'qkv'}"
            with torch.no_grad():
                a.A.copy_(design_A(acc.values[stream], self.memory.get(stream), r).to(a.A))
            a.A.requires_grad_(False)
            a.B.requires_grad_(True)

    def after_training_exp(self, strategy, **kw):
        super().after_training_exp(strategy, **kw)  # merge
        t, T = strategy.experience.current_experience, len(self.ctx.scenario.tasks)
        eps = threshold_schedule(t, T, self.params["lambda_b"], self.params["lambda_e"])
        acc = self.covariances(strategy)  # with the trained model
        for key, C in acc.values.items():
            self.memory[key], _ = grow_basis(self.memory.get(key), C, eps, "gram")
        self.report = {"threshold": eps, "memory_sizes": {k: int(v.shape[1]) for k, v in self.memory.items()}}

    def task_report(self):
        return self.report

    def switches(self):
        return super().switches() | {"memory": "remove-basis", "A_scale": "1/sqrt(3)"}
