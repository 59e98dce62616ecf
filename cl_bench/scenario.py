"""What a scenario is: a sequence of tasks (``Task``), built (``BuiltScenario``) from a registered
``Scenario`` for one backbone and seed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset


@dataclass
class Task:
    """One experience. Train labels are local to ``train_prompts``; test labels index the evaluation
    class list (MTIL: this task's classes; CIL: all classes in class order)."""

    name: str
    train: Dataset
    test: Dataset
    train_prompts: list[list[str]]  # per class, its prompt(s) for training
    eval_prompts: list[list[str]]  # per class of this task, its prompt(s) for evaluation


@dataclass
class BuiltScenario:
    tasks: list[Task]
    protocol: str  # "mtil" (task-aware) or "cil" (joint classifier over the classes seen so far)
    info: dict = field(default_factory=dict)  # recorded in results (e.g. order, prompts convention)

    def _eval_tasks(self, j: int, after: int | None) -> list[Task]:
        """Whose classes make up the classifier that evaluates task j after training task ``after`` (None:
        zero-shot): MTIL task j alone, CIL every seen step in class order."""
        if self.protocol == "mtil":
            return [self.tasks[j]]
        return self.tasks[: (len(self.tasks) - 1 if after is None else after) + 1]

    def eval_key(self, j: int, after: int | None) -> str:
        """Identifies the evaluation class set: MTIL task j's own classes (same key as its training), or the
        CIL union of the classes seen after a step."""
        if self.protocol == "mtil":
            return self.tasks[j].name
        return f"cil-seen:{len(self._eval_tasks(j, after)) - 1}"

    def eval_parts(self, j: int, after: int | None) -> list[tuple[str, int]]:
        """The evaluation class list as consecutive (training key, number of classes) blocks. Per-task
        components (KeepLoRA+ heads) compose by it."""
        return [(t.name, len(t.eval_prompts)) for t in self._eval_tasks(j, after)]

    def eval_prompts(self, j: int, after: int | None) -> list[list[str]]:
        """Prompts of the classifier that evaluates task j after training task ``after`` (None: zero-shot)."""
        return [p for t in self._eval_tasks(j, after) for p in t.eval_prompts]

    def evaluated(self, after: int | None) -> list[int]:
        """Which tasks are evaluated after a task (CIL: only the seen ones)."""
        T = len(self.tasks)
        if self.protocol == "mtil" or after is None:
            return list(range(T))
        return list(range(after + 1))


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    protocol: str
    version: str
    profile: str  # selects method defaults: "micro", "mtil" or "cil"
    defaults: Mapping[str, Any]
    build: Callable[[Mapping[str, Any], Any, int], BuiltScenario]  # (params, backbone, seed)
    default_backbone: str = "ViT-B-16"
    default_pretrained: str | None = "openai"
    # On-disk data it reads (None: none, so no data root): ``.datasets``, ``.resolve_root(value)`` and
    # ``.check(root, deep)`` for `cl-bench data check` (e.g. cl_bench/benchmarks/real_scenarios.py OnDiskData).
    data: Any = None
