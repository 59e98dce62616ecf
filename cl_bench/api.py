"""The contracts a plugin author implements: a Method (Avalanche plugins + defaults) and a Scenario
(a sequence of tasks). Built-ins use exactly these and register through the same entry points."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from .scenario import BuiltScenario, Scenario, Task  # noqa: F401  (re-exported for plugin authors)

# Hyper-parameters every method has (the runner reads them); methods override the values.
RUN_DEFAULTS: dict[str, Any] = {
    "batch_size": 64,
    "eval_batch_size": 256,
    "epochs": 1,  # int, or one int per task
    "iterations": 0,  # > 0: train exactly this many steps per task instead of epochs
    "lr": 1e-5,
    "lr_per_task": {},  # task name -> learning rate, overriding lr for that task
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "amp": True,  # fp16 autocast + GradScaler, used on CUDA only
    "num_workers": 0,
}

# The one training budget of every method on the embedded (micro) profile: the same number of steps of the
# same batch size per task, so methods differ only in what they do with them (docs/micro-world.md). Methods
# add their own tuned learning rate.
MICRO_BUDGET: dict[str, Any] = {"iterations": 150, "epochs": 1, "batch_size": 64}


class MethodPlugin(SupervisedPlugin):
    """Base of a method's main plugin. The runner calls ``configure_optimizers`` after the plugins'
    ``before_training_exp`` so a method first decides what trains, then builds its optimizer over
    exactly those parameters."""

    def __init__(self, ctx: RunContext):
        super().__init__()
        self.ctx = ctx

    @property
    def p(self) -> Mapping[str, Any]:
        return self.ctx.params

    def trainable_parameters(self, strategy) -> list[torch.nn.Parameter]:
        return [p for p in strategy.model.parameters() if p.requires_grad]

    def configure_optimizers(self, strategy, total_steps: int):
        """AdamW over the trainable parameters, warm-up + cosine per step (override as needed)."""
        from .schedules import warmup_cosine

        params = self.trainable_parameters(strategy)
        opt = torch.optim.AdamW(params, lr=self.task_lr(strategy), weight_decay=self.p["weight_decay"])
        return opt, warmup_cosine(opt, total_steps, self.p.get("warmup", 0))

    def task_lr(self, strategy) -> float:
        """The learning rate for the current task: ``lr``, unless ``lr_per_task`` names the task (ZSCL's
        recipe uses 5e-5 for Aircraft and MNIST and 1e-5 elsewhere)."""
        name = self.ctx.scenario.tasks[strategy.experience.current_experience].name
        return float(self.p.get("lr_per_task", {}).get(name, self.p["lr"]))

    def switches(self) -> dict:
        """Named behaviour switches recorded in the results file."""
        return {}

    def task_report(self) -> dict:
        """Method-specific diagnostics for the task just finished (results ``per_task[t].extra``)."""
        return {}

    def state_dict(self) -> dict:
        """Method state carried across tasks (checkpointed for --resume)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    paper: str
    defaults: Mapping[str, Any]
    plugins: Callable[[RunContext], list[SupervisedPlugin]]  # first one is the MethodPlugin
    profile_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    trains: bool = True
    aliases: tuple[str, ...] = ()


@dataclass
class RunContext:
    """What a method's plugins get: the run's parameters, the classifier, the scenario and device."""

    config: Any  # RunConfig
    params: Mapping[str, Any]
    classifier: Any  # CLIPClassifier
    scenario: BuiltScenario
    device: torch.device
    backbone: Any
