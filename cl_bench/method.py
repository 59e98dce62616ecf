"""The method contract: one class per method (docs/adding-a-method.md).

A method is an Avalanche ``SupervisedPlugin`` subclass that declares its name, paper and hyper-parameters
as class attributes and reacts to Avalanche's callbacks (``before_training_exp``, ``before_backward``, ...).
The base class gives it a small set of helpers so it never reaches into the runner's internals:

- ``autocast()``: the run's precision for forward passes it makes itself;
- ``task_lr`` / ``param_groups`` / ``make_scheduler``: the optimizer is AdamW over the parameter groups the
  method returns, built by the runner after the method has chosen what trains;
- ``attention_statistics``: input statistics of every attention projection over a task's images and the
  current class prompts;
- ``state_dict`` / ``load_state_dict``: the attributes named in ``STATE`` are checkpointed for ``--resume``.

Text features need no bookkeeping: the classifier recomputes them whenever a text-tower weight changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from avalanche.core import SupervisedPlugin

from . import precision as _precision
from .attention_stats import StatAccumulator, record_attention_inputs
from .schedules import warmup_cosine

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
    "precision": "auto",  # auto | bf16 | fp16 | fp32 (cl_bench/precision.py); CPU runs are fp32
    "num_workers": 0,
}

# The one training budget of every method on the embedded (micro) profile: the same number of steps of the
# same batch size per task, so methods differ only in what they do with them (docs/micro-world.md). Methods
# add their own tuned learning rate.
MICRO_BUDGET: dict[str, Any] = {"iterations": 150, "epochs": 1, "batch_size": 64}


@dataclass
class RunContext:
    """What a method gets from the runner: the run's parameters, the classifier, the built scenario, the
    device and the resolved precision."""

    config: Any  # RunConfig
    params: Mapping[str, Any]
    classifier: Any  # CLIPClassifier
    scenario: Any  # BuiltScenario
    device: torch.device
    backbone: Any
    precision: str = "fp32"

    def autocast(self):
        return _precision.autocast(self.precision, self.device)


class CLMethod(SupervisedPlugin):
    """Base class of every method. Subclasses set the class attributes below and override callbacks."""

    NAME: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    PAPER: ClassVar[str] = ""  # paper and reference implementation
    DEFAULTS: ClassVar[Mapping[str, Any]] = {}  # the paper's recipe; new keys become valid --set keys
    PROFILE_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # by scenario profile ("micro", "mtil", "cil")
    SCENARIO_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # by scenario name (after the profile)
    SWITCHES: ClassVar[tuple[str, ...]] = ()  # parameters recorded as the method's behaviour switches
    OPERATIONAL: ClassVar[tuple[str, ...]] = ()  # parameters that cannot change results (paths to inputs)
    STATE: ClassVar[tuple[str, ...]] = ()  # attributes carried across tasks, checkpointed for --resume
    TRAINS: ClassVar[bool] = True
    ALIASES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: RunContext):
        super().__init__()
        self.ctx = ctx
        self.params = ctx.params
        self.classifier = ctx.classifier

    @classmethod
    def defaults_for(cls, profile: str, scenario: str) -> dict[str, Any]:
        """The method's defaults on a scenario: DEFAULTS < PROFILE_DEFAULTS[profile] < SCENARIO_DEFAULTS[name]."""
        return {**cls.DEFAULTS, **cls.PROFILE_DEFAULTS.get(profile, {}), **cls.SCENARIO_DEFAULTS.get(scenario, {})}

    def extra_plugins(self) -> list[SupervisedPlugin]:
        """Further Avalanche plugins the method needs beside itself."""
        return []

    # -- helpers ------------------------------------------------------------------------------------------
    def autocast(self):
        """Autocast at the run's precision, for forward passes the method makes outside the training step."""
        return self.ctx.autocast()

    def task_lr(self, strategy) -> float:
        """The learning rate for the current task: ``lr``, unless ``lr_per_task`` names the task (ZSCL's
        recipe uses 5e-5 for Aircraft and MNIST and 1e-5 elsewhere)."""
        name = self.ctx.scenario.tasks[strategy.experience.current_experience].name
        return float(self.params.get("lr_per_task", {}).get(name, self.params["lr"]))

    @torch.no_grad()
    def attention_statistics(self, strategy, stat: str, images: Iterable, *, towers=("visual", "text"),
                             streams=("qkv", "o")) -> StatAccumulator:
        """Inputs of the attention projections (cl_bench/attention_stats.py), over the image batches of
        ``images`` and one full-context forward of the current class prompts."""
        clip, device = self.classifier.clip, strategy.device
        acc = StatAccumulator(stat)
        if "visual" in towers:
            with record_attention_inputs(clip, acc, towers=("visual",), streams=streams):
                for x, _ in images:
                    with self.autocast():
                        clip.encode_image(x.to(device))
        if "text" in towers:
            with record_attention_inputs(clip, acc, towers=("text",), streams=streams), self.autocast():
                clip.encode_text(self.classifier.tokens.to(device))
        return acc

    # -- optimizer ----------------------------------------------------------------------------------------
    def param_groups(self, strategy) -> list:
        """What trains on this task: parameters or AdamW parameter groups (default: every parameter with
        ``requires_grad``, which the method set in ``before_training_exp``)."""
        return [p for p in strategy.model.parameters() if p.requires_grad]

    def make_scheduler(self, optimizer, total_steps: int, lr: float):
        """Per-step schedule (default ZSCL's warm-up + cosine, with the ``warmup`` parameter if any)."""
        return warmup_cosine(optimizer, total_steps, self.params.get("warmup", 0))

    def configure_optimizers(self, strategy, total_steps: int):
        """Called by the strategy after the plugins' ``before_training_exp``. (None, None): nothing trains."""
        groups = self.param_groups(strategy)
        if not groups:
            return None, None
        lr = self.task_lr(strategy)
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=self.params["weight_decay"])
        return opt, self.make_scheduler(opt, total_steps, lr)

    # -- what the results file records ----------------------------------------------------------------------
    def switches(self) -> dict:
        """Named behaviour switches recorded in the results file (parameters in SWITCHES by default)."""
        return {k: _plain(self.params[k]) for k in self.SWITCHES}

    def task_report(self) -> dict:
        """Method-specific diagnostics for the task just finished (results ``per_task[t].extra``)."""
        return {}

    # -- resume -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {name: _to(getattr(self, name), "cpu") for name in self.STATE}

    def load_state_dict(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, _to(state[name], self.ctx.device))


def _to(value, device):
    """Tensors (also inside dicts) moved to ``device``; other values as they are."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def is_method_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, CLMethod) and bool(obj.NAME)
