"""The papers' reported numbers beside ours (cl_bench/reference.py): which reported rows belong to a
setting, which of them match its protocol closely enough for a delta, and why the others do not."""

from __future__ import annotations

from ..protocols import TableSpec
from ..reference import ReferenceRow, dataset_key, reference_rows
from .model import Cell, Row


def rows_for(scenario: str, setting: dict) -> list[ReferenceRow]:
    """Reported rows of the scenario that belong to this setting at all: every parameter a row names (CIL:
    its number of steps) equals ours, where our runs have that parameter."""
    params = setting["scenario"]["params"]
    return [ref for ref in reference_rows(scenario)
            if all(params.get(k) is None or params[k] == v for k, v in ref.params.items())]


def mismatch(ref: ReferenceRow, setting: dict) -> str | None:
    """Why our runs' protocol differs from a reported row's (None if it matches). The scenario already
    matches: reported rows are looked up by scenario name."""
    b, params = setting["backbone"], setting["scenario"]["params"]
    ours = (b["name"], b["pretrained"], b["prompts"])
    if ours != (ref.backbone, ref.pretrained, ref.prompts):
        return (f"reported {ref.source} rows use {ref.backbone} ({ref.pretrained}) with {ref.prompts} "
                f"prompts; these runs use {ours[0]} ({ours[1]}) with {ours[2]} prompts")
    for key, value in ref.params.items():
        if params.get(key) != value:
            return f"reported {ref.source} rows are for {key}={value}; these runs have {params.get(key)}"
    return None


def delta_target(refs: list[ReferenceRow], method: str, setting: dict) -> ReferenceRow | None:
    """The first reported row of the same method whose protocol matches ours."""
    return next((r for r in refs if r.method == method and mismatch(r, setting) is None), None)


def shows_in(spec: TableSpec, ref: ReferenceRow) -> bool:
    return spec.key in ref.per_task or any(key in ref.means for _, _, key in spec.summaries)


def reported_row(spec: TableSpec, ref: ReferenceRow, tasks: list[str]) -> Row:
    values = ref.per_task.get(spec.key, ())
    if ref.tasks is not None:  # by dataset name, whatever order and spelling our scenario uses
        by_name = {dataset_key(t): v for t, v in zip(ref.tasks, values)}
        aligned = [by_name.get(dataset_key(t)) for t in tasks]
    else:  # by position (CIL steps)
        aligned = [values[i] if i < len(values) else None for i in range(len(tasks))]
    cells = [None if v is None else Cell(v) for v in aligned]
    summaries = [Cell(ref.means[key]) if key in ref.means else None for _, _, key in spec.summaries]
    return Row(f"{ref.label} (reported)", "reported", ref.method, ref.source, cells, summaries,
               [None] * len(summaries))


def notes(refs: list[ReferenceRow], setting: dict) -> list[str]:
    """Why reported rows carry no delta, and the sources' own caveats, each said once."""
    out = [mismatch(ref, setting) for ref in refs]
    out += [f"{ref.label} [{ref.source}]: {ref.note}" for ref in refs if ref.note]
    return list(dict.fromkeys(n for n in out if n))
