"""Evaluation protocols as objects (docs/protocols.md): which tasks are evaluated after each task, against
which classes, which metrics summarise the accuracy matrix and which tables show them.

A scenario names its protocol by object or by stable id; results files record the id. Every other module
asks the protocol object, never compares ids. A task-agnostic protocol (X-TAIL: every test set scored
against the classes of all tasks, no task identity) is one more subclass: ``eval_tasks`` returns every
task, ``fixed_class_sets`` is true, and its metrics and tables are its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from .errors import UserError
from .metrics import Matrix, cil_metrics, mtil_metrics

T = TypeVar("T")


@dataclass(frozen=True)
class TableSpec:
    """One metric table: where its per-task values and its summary values live in a run's metrics."""

    key: str  # metric key, also the CSV ``table`` column
    title: str  # leaderboard section title
    label: str  # row label in a single run's metrics table (`cl-bench show`)
    per_task: tuple[str, ...]  # path to the per-task list in the metrics dict
    summaries: tuple[tuple[str, tuple[str, ...], str], ...]  # (column, metrics path, reported-means key)

    def values(self, metrics: dict) -> list:
        """The per-task values of this table in a run's metrics."""
        return _at(metrics, self.per_task)

    def summary_values(self, metrics: dict) -> list:
        """The summary values, one per summary column."""
        return [_at(metrics, path) for _, path, _ in self.summaries]


def _at(metrics: dict, path: tuple[str, ...]):
    for key in path:
        metrics = metrics[key]
    return metrics


class Protocol:
    """Base class. Subclasses set the class attributes and the class set rule (``eval_tasks``)."""

    id: ClassVar[str]  # stable: recorded in results files
    description: ClassVar[str]
    metrics_title: ClassVar[str]  # title of a run's metrics table
    tables: ClassVar[tuple[TableSpec, ...]]
    # Scenario parameters that name the setting in table headers and select reported rows (CIL: steps).
    key_params: ClassVar[tuple[str, ...]] = ()
    # Whether each task's evaluation class set is the same after every task. Then a model that never
    # changes (a non-training method) scores its zero-shot row after every task, and the runner reuses it.
    fixed_class_sets: ClassVar[bool]

    def evaluated(self, num_tasks: int, after: int | None) -> list[int]:
        """Which tasks are evaluated after training task ``after`` (None: zero-shot, before any training)."""
        return list(range(num_tasks))

    def eval_tasks(self, tasks: Sequence[T], j: int, after: int | None) -> list[T]:
        """The tasks whose classes, in this order, make up the classifier that evaluates task j."""
        raise NotImplementedError

    def eval_key(self, tasks: Sequence, j: int, after: int | None) -> str:
        """Identifies the evaluation class set (text features are cached by it)."""
        raise NotImplementedError

    def metrics(self, matrix: Matrix, test_sizes: Sequence[int]) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<protocol {self.id}>"


class TaskIncremental(Protocol):
    """MTIL: every test set after every task, each scored against its own task's classes only."""

    id = "mtil"
    description = "task-incremental: each task scored against its own classes, every task after every task"
    metrics_title = "MTIL metrics (%)"
    tables = tuple(
        TableSpec(key, title, title, (key, "per_task"), (("Mean", (key, "mean"), key),))
        for key, title in (("transfer", "Transfer"), ("avg", "Avg."), ("last", "Last"))
    )
    fixed_class_sets = True

    def eval_tasks(self, tasks, j, after):
        return [tasks[j]]

    def eval_key(self, tasks, j, after):
        return tasks[j].name  # the same key as the task's training prompts: one cache entry

    def metrics(self, matrix, test_sizes):
        return mtil_metrics(matrix)


class ClassIncremental(Protocol):
    """CIL: after step t, the test sets of steps 0..t, each scored against all classes seen so far."""

    id = "cil"
    description = "class-incremental: one classifier over every class seen so far, seen steps only"
    metrics_title = "Class-incremental accuracy (%) on all classes seen so far"
    tables = (TableSpec("accuracy", "Accuracy after each step", "accuracy", ("steps",),
                        (("Avg.", ("avg",), "avg"), ("Last", ("last",), "last"))),)
    key_params = ("steps",)
    fixed_class_sets = False

    def evaluated(self, num_tasks, after):
        return list(range(num_tasks if after is None else after + 1))

    def eval_tasks(self, tasks, j, after):
        # Zero-shot sees the final classifier over all classes: the baseline the last step is compared with.
        return list(tasks[: (len(tasks) - 1 if after is None else after) + 1])

    def eval_key(self, tasks, j, after):
        return f"cil-seen:{len(self.eval_tasks(tasks, j, after)) - 1}"

    def metrics(self, matrix, test_sizes):
        return cil_metrics(matrix, test_sizes)


class TaskAgnostic(Protocol):
    """X-TAIL (RAIL, NeurIPS 2024): every test set after every task, each image scored against the classes of
    ALL tasks (seen and not yet seen), with no task identity. As in the reference code, the label space does
    not grow with the steps: zero-shot prediction over every domain's classes is what a method must beat on
    domains it has not learned yet. Transfer / Avg. / Last are MTIL's formulas on this matrix
    (docs/protocols.md)."""

    id = "xtail"
    description = "task-agnostic: every test set scored against the classes of all tasks, every task after every task"
    metrics_title = "X-TAIL metrics (%), task-agnostic"
    tables = TaskIncremental.tables
    fixed_class_sets = True

    def eval_tasks(self, tasks, j, after):
        return list(tasks)

    def eval_key(self, tasks, j, after):
        return "xtail:all"

    def metrics(self, matrix, test_sizes):
        return mtil_metrics(matrix)


TASK_INCREMENTAL = TaskIncremental()
CLASS_INCREMENTAL = ClassIncremental()
TASK_AGNOSTIC = TaskAgnostic()
PROTOCOLS: dict[str, Protocol] = {p.id: p for p in (TASK_INCREMENTAL, CLASS_INCREMENTAL, TASK_AGNOSTIC)}


def get(protocol: Protocol | str) -> Protocol:
    """A protocol object from itself or its id; an unknown id is a one-line UserError."""
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, str) and protocol in PROTOCOLS:
        return PROTOCOLS[protocol]
    raise UserError(f"unknown protocol {protocol!r}; use one of {', '.join(sorted(PROTOCOLS))} or a "
                    "cl_bench.protocols.Protocol object")
