"""What a leaderboard is, as plain data: built by cl_bench/leaderboard/build.py, formatted by markdown.py,
csv_export.py and cl_bench/render.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import reference
from ..protocols import Protocol


@dataclass(frozen=True)
class Cell:
    """A value over seeds: sample std (ddof=1) is None with one seed; both std and n are None for a
    reported number."""

    mean: float
    std: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class Delta:
    value: float  # our mean - reported mean (unrounded - printed)
    versus: str  # the reported row it compares with: "label [source]"


@dataclass
class Row:
    label: str
    kind: str  # "ours" or "reported"
    method: str | None  # cl-bench method name (reported rows: the same method, if we implement it)
    source: str  # "ours" or the reference source tag
    cells: list[Cell | None]  # one per task, in training order
    summaries: list[Cell | None]  # one per Table.summary_columns
    deltas: list[Delta | None]  # one per Table.summary_columns
    n: int | None = None  # seeds averaged (ours)


@dataclass
class Table:
    key: str  # metric key: "transfer", "avg", "last" (MTIL) or "accuracy" (CIL)
    title: str
    columns: list[str]  # task names in training order
    summary_columns: list[str]  # "Mean" (MTIL) or "Avg.", "Last" (CIL)
    rows: list[Row]

    def has_deltas(self) -> bool:
        return any(d is not None for row in self.rows for d in row.deltas)

    def has_reported(self) -> bool:
        return any(row.kind == "reported" for row in self.rows)


@dataclass(frozen=True)
class Cost:
    """Per method, over all tasks of all its seeds."""

    method: str
    n: int
    trainable_params: int | None  # max
    peak_memory_mb: float | None  # max
    wall_time_per_task_s: float | None  # mean
    gpu_hours: float | None = None  # total over every run, when the runs came from a GPU
    train_images_per_s: float | None = None  # images through the training step / training time, GPU runs


@dataclass(frozen=True)
class Excluded:
    path: str
    method: str
    seed: int
    status: str
    tasks_done: int
    tasks_total: int


@dataclass
class Provenance:
    scenario_version: object
    backbone: str
    pretrained: str
    prompts: str
    params: dict  # the scenario parameters that name the setting (the protocol's key_params, CIL: steps)
    cl_bench: list[str]  # distinct "version (commit ...)" of the runs
    packages: dict[str, list[str]]  # package -> distinct versions of the runs
    devices: list[str]  # distinct devices the runs (and so the cost columns) were measured on
    switches: dict[str, dict]  # method -> its switches, operational ones left out (no machine paths)
    sources: list[reference.Source]  # sources of the reported rows shown


@dataclass
class Leaderboard:
    scenario: str
    protocol: Protocol
    tasks: list[str]
    tables: list[Table]
    costs: list[Cost]
    excluded: list[Excluded]
    provenance: Provenance
    notes: list[str] = field(default_factory=list)
