"""What a scenario is: a sequence of tasks (``Task``), built (``BuiltScenario``) from a registered
``Scenario`` for one backbone and seed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from . import protocols
from .protocols import Protocol


@dataclass
class Task:
    """One experience. Train labels are local to ``train_prompts``; test labels index the evaluation
    class list of the scenario's protocol (MTIL: this task's classes; CIL: all classes in class order)."""

    name: str
    train: Dataset
    test: Dataset
    train_prompts: list[list[str]]  # per class, its prompt(s) for training
    eval_prompts: list[list[str]]  # per class of this task, its prompt(s) for evaluation


@dataclass
class BuiltScenario:
    tasks: list[Task]
    protocol: Protocol  # a Protocol object or its id ("mtil", "cil"), looked up once here
    info: dict = field(default_factory=dict)  # recorded in results (e.g. order, prompts convention)

    def __post_init__(self):
        self.protocol = protocols.get(self.protocol)

    def eval_key(self, j: int, after: int | None) -> str:
        """Identifies the class set that evaluates task j after training task ``after`` (None: zero-shot)."""
        return self.protocol.eval_key(self.tasks, j, after)

    def eval_parts(self, j: int, after: int | None) -> list[tuple[str, int]]:
        """The evaluation class list as consecutive (training key, number of classes) blocks. Per-task
        components (KeepLoRA+ heads) compose by it."""
        return [(t.name, len(t.eval_prompts)) for t in self.protocol.eval_tasks(self.tasks, j, after)]

    def eval_prompts(self, j: int, after: int | None) -> list[list[str]]:
        """Prompts of the classifier that evaluates task j after training task ``after`` (None: zero-shot)."""
        return [p for t in self.protocol.eval_tasks(self.tasks, j, after) for p in t.eval_prompts]

    def evaluated(self, after: int | None) -> list[int]:
        """Which tasks are evaluated after a task."""
        return self.protocol.evaluated(len(self.tasks), after)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    protocol: Protocol  # a Protocol object or its id, looked up once here
    version: str
    profile: str  # selects method defaults: "micro", "mtil" or "cil"
    defaults: Mapping[str, Any]
    build: Callable[[Mapping[str, Any], Any, int], BuiltScenario]  # (params, backbone, seed)
    default_backbone: str = "ViT-B-16"
    default_pretrained: str | None = "openai"
    # Parameters of this scenario that cannot change results (where its data lives): they may differ between
    # runs that --resume or average together (docs/results-format.md).
    operational: tuple[str, ...] = ()
    # On-disk data it reads (None: none, so no data root): ``.datasets``, ``.resolve_root(value)`` and
    # ``.check(root, deep)`` for `cl-bench data check` (e.g. cl_bench/benchmarks/real_scenarios.py OnDiskData).
    data: Any = None

    def __post_init__(self):
        object.__setattr__(self, "protocol", protocols.get(self.protocol))

    @property
    def OPERATIONAL(self) -> tuple[str, ...]:  # the attribute name methods declare theirs under
        return self.operational
