"""Leaderboards: results files of one scenario -> tables of mean ± std over seeds, beside the papers' numbers.

``load_runs`` reads results files, ``build_leaderboard`` turns them into a ``Leaderboard`` (plain data),
and ``to_markdown`` / ``to_csv`` / ``to_rich`` render it. Output is deterministic for the same inputs:
stable ordering and fixed formatting, no timestamps, so published leaderboards diff cleanly.

Rules that keep the numbers honest:

- only ``finished`` runs are averaged; the others are listed under "not included";
- runs that differ in scenario version, backbone, pretrained tag, prompt convention, CIL steps or task
  list are never averaged together (UserError naming the two files), nor seeds of one method run with
  different method switches;
- a delta against a reported row is shown only where its protocol matches ours (see ``cl_bench.reference``).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import reference
from .errors import UserError
from .results import compute_metrics, load_results

PATH_KEY = "_path"  # where load_runs found a run; added to the dict, not part of the results schema
PACKAGES = ("python", "torch", "open_clip", "avalanche")


# ---------------------------------------------------------------------------------------------- loading


def load_runs(paths: Iterable[str | Path]) -> list[dict]:
    """Read results files. A directory is searched recursively for ``seed*.json``; a file given twice
    (directly and through its directory) is read once. Each run records its path under ``PATH_KEY``."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("seed*.json"))
            if not found:
                raise UserError(f"no seed*.json results files under {p}; pass the --out folder of "
                                "`cl-bench run` or files in it")
            files += found
        else:
            files.append(p)
    if not files:
        raise UserError("no results files given; pass results folders or seed<N>.json files")
    runs, seen = [], set()
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        run = load_results(f)
        run[PATH_KEY] = str(f)
        runs.append(run)
    return runs


# ---------------------------------------------------------------------------------------------- data


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
    params: dict  # the setting's config params (CIL: steps)
    cl_bench: list[str]  # distinct "version (commit ...)" of the runs
    packages: dict[str, list[str]]  # package -> distinct versions of the runs
    devices: list[str]  # distinct devices the runs (and so the cost columns) were measured on
    switches: dict[str, dict]  # method -> its switches
    sources: list[reference.Source]  # sources of the reported rows shown


@dataclass
class Leaderboard:
    scenario: str
    protocol: str  # "mtil" or "cil"
    tasks: list[str]
    tables: list[Table]
    costs: list[Cost]
    excluded: list[Excluded]
    provenance: Provenance
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class _Spec:
    """One table: where its per-task values and its summary values live in a run's metrics."""

    key: str
    title: str
    per_task: tuple[str, ...]
    summaries: tuple[tuple[str, tuple[str, ...], str], ...]  # (column, metrics path, reference means key)


_TABLES = {
    "mtil": tuple(
        _Spec(key, title, (key, "per_task"), (("Mean", (key, "mean"), key),))
        for key, title in (("transfer", "Transfer"), ("avg", "Avg."), ("last", "Last"))
    ),
    "cil": (
        _Spec("accuracy", "Accuracy after each step", ("steps",),
              (("Avg.", ("avg",), "avg"), ("Last", ("last",), "last"))),
    ),
}


def _get(metrics: dict, path: tuple[str, ...]):
    for key in path:
        metrics = metrics[key]
    return metrics


def _path(run: dict) -> str:
    return run.get(PATH_KEY) or f"{run['scenario']}/{run['method']}/seed{run['seed']}.json"


def _params(run: dict) -> dict:
    return (run.get("config") or {}).get("params") or {}


def _setting(run: dict) -> dict:
    """What must be equal for two runs to be averaged or compared (in the order reported on conflict)."""
    backbone = run.get("backbone") or {}
    return {
        "scenario version": run["scenario_version"],
        "protocol": run["protocol"],
        "backbone": backbone.get("name"),
        "pretrained tag": backbone.get("pretrained"),
        "prompt convention": backbone.get("prompts"),
        "steps": _params(run).get("steps"),
        "task list": list(run["tasks"]),
    }


def _short(value) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def build_leaderboard(runs: Sequence[dict], scenario: str | None = None) -> Leaderboard:
    """Group finished runs of one scenario by method and tabulate every metric; see the module docstring."""
    if not runs:
        raise UserError("no results to tabulate; pass results folders or seed<N>.json files")
    scenario, runs = _select_scenario(runs, scenario)
    runs = sorted(runs, key=lambda r: (r["method"], r["seed"], _path(r)))
    finished = [r for r in runs if r["status"] == "finished"]
    excluded = [_excluded(r) for r in runs if r["status"] != "finished"]
    if not finished:
        raise UserError(f"no finished runs for scenario {scenario!r} ({len(excluded)} not finished: "
                        f"{', '.join(e.path for e in excluded)}); finish or resume them first")
    _check_comparable(finished)

    by_method: dict[str, list[dict]] = {}
    for run in finished:
        by_method.setdefault(run["method"], []).append(run)
    metrics = {m: [_metrics(r) for r in rs] for m, rs in by_method.items()}

    first = finished[0]
    setting = _setting(first)
    refs = [ref for ref in reference.reference_rows(scenario) if _same_setting(ref, setting)]
    tasks = list(first["tasks"])
    tables = [_table(spec, tasks, metrics, refs, setting) for spec in _TABLES[first["protocol"]]]
    return Leaderboard(
        scenario=scenario,
        protocol=first["protocol"],
        tasks=tasks,
        tables=tables,
        costs=[_cost(m, rs) for m, rs in by_method.items()],
        excluded=excluded,
        provenance=_provenance(finished, by_method, refs),
        notes=_notes(refs, setting),
    )


def _select_scenario(runs: Sequence[dict], scenario: str | None) -> tuple[str, list[dict]]:
    names = sorted({r["scenario"] for r in runs})
    if scenario is None:
        if len(names) > 1:
            raise UserError(f"the results span {len(names)} scenarios ({', '.join(names)}); "
                            "choose one with --scenario")
        scenario = names[0]
    chosen = [r for r in runs if r["scenario"] == scenario]
    if not chosen:
        raise UserError(f"no results for scenario {scenario!r}; the files given have: {', '.join(names)}")
    return scenario, chosen


def _excluded(run: dict) -> Excluded:
    done, total = len(run["matrix"]), len(run["tasks"])
    return Excluded(_path(run), run["method"], run["seed"], run["status"], done, total)


# Parameters that change where data lives or how fast evaluation runs, never what a run computes: seeds of one
# method may differ in them. Every other parameter must be equal for seeds to be averaged.
OPERATIONAL_PARAMS = frozenset({"data_root", "split_file_dir", "ref_images", "ref_captions", "cache_preprocessed",
                                "eval_batch_size", "num_workers"})


def _param_difference(a: dict, b: dict) -> str | None:
    pa, pb = _params(a), _params(b)
    for key in sorted((pa.keys() | pb.keys()) - OPERATIONAL_PARAMS):
        if pa.get(key) != pb.get(key):
            return f"{key} ({_short(pa.get(key))} vs {_short(pb.get(key))})"
    return None


def _check_comparable(runs: list[dict]) -> None:
    """Refuse, in one line naming both files, anything that would average incomparable numbers."""
    base, expected = runs[0], _setting(runs[0])
    for run in runs[1:]:
        for name, value in _setting(run).items():
            if value != expected[name]:
                raise UserError(f"{_path(base)} and {_path(run)} are not comparable: {name} differs "
                                f"({_short(expected[name])} vs {_short(value)}); "
                                "build one leaderboard per setting")
    seen: dict[tuple, dict] = {}
    for run in runs:
        other = seen.setdefault((run["method"], run["seed"]), run)
        if other is not run:
            raise UserError(f"{_path(other)} and {_path(run)} are both {run['method']} seed {run['seed']}; "
                            "pass each run once")
    by_method: dict[str, dict] = {}
    for run in runs:
        other = by_method.setdefault(run["method"], run)
        if (other.get("switches") or {}) != (run.get("switches") or {}):
            raise UserError(f"{_path(other)} and {_path(run)} ({run['method']}) cannot be averaged: method "
                            f"switches differ ({other.get('switches') or {}} vs {run.get('switches') or {}})")
        diff = _param_difference(other, run)
        if diff:
            raise UserError(f"{_path(other)} and {_path(run)} ({run['method']}) cannot be averaged: "
                            f"hyper-parameter {diff} differs; re-run with the same options")


def _metrics(run: dict) -> dict:
    """The stored metrics, or recomputed from the matrix if a writer left them out."""
    metrics = run["metrics"] or compute_metrics(run)
    if metrics is None:
        raise UserError(f"{_path(run)} is marked finished but its accuracy matrix is incomplete; re-run it")
    return metrics


def _same_setting(ref: reference.ReferenceRow, setting: dict) -> bool:
    """Whether a reported row belongs to this setting at all (CIL: same number of steps)."""
    steps = ref.params.get("steps")
    return steps is None or setting["steps"] is None or steps == setting["steps"]


def _protocol_mismatch(ref: reference.ReferenceRow, setting: dict) -> str | None:
    """Why our runs' protocol differs from a reported row's (None if it matches). The scenario already
    matches: reported rows are looked up by scenario name."""
    params = _params_of(setting)
    ours = (setting["backbone"], setting["pretrained tag"], setting["prompt convention"])
    theirs = (ref.backbone, ref.pretrained, ref.prompts)
    if ours != theirs:
        return (f"reported {ref.source} rows use {ref.backbone} ({ref.pretrained}) with {ref.prompts} "
                f"prompts; these runs use {ours[0]} ({ours[1]}) with {ours[2]} prompts")
    for key, value in ref.params.items():
        if params.get(key) != value:
            return f"reported {ref.source} rows are for {key}={value}; these runs have {params.get(key)}"
    return None


def _aggregate(values: Sequence[float | None]) -> Cell | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Cell(statistics.fmean(values), std, len(values))


def _table(spec: _Spec, tasks: list[str], metrics: dict[str, list[dict]],
           refs: list[reference.ReferenceRow], setting: dict) -> Table:
    rows = [_our_row(spec, method, ms, tasks, refs, setting) for method, ms in metrics.items()]
    rows += [_reported_row(spec, ref, tasks) for ref in refs if spec.key in ref.per_task
             or any(key in ref.means for _, _, key in spec.summaries)]
    return Table(spec.key, spec.title, list(tasks), [col for col, _, _ in spec.summaries], rows)


def _our_row(spec: _Spec, method: str, ms: list[dict], tasks: list[str],
             refs: list[reference.ReferenceRow], setting: dict) -> Row:
    per_task = [_get(m, spec.per_task) for m in ms]
    cells = [_aggregate([values[i] for values in per_task]) for i in range(len(tasks))]
    summaries = [_aggregate([_get(m, path) for m in ms]) for _, path, _ in spec.summaries]
    # Compare with the first reported row of the same method whose protocol matches ours.
    match = next((r for r in refs if r.method == method and _protocol_mismatch(r, setting) is None), None)
    deltas = []
    for cell, (_, _, key) in zip(summaries, spec.summaries):
        if match is None or cell is None or key not in match.means:
            deltas.append(None)
        else:
            deltas.append(Delta(cell.mean - match.means[key], f"{match.label} [{match.source}]"))
    return Row(method, "ours", method, "ours", cells, summaries, deltas, n=len(ms))


def _params_of(setting: dict) -> dict:
    return {"steps": setting["steps"]} if setting["steps"] is not None else {}


def _reported_row(spec: _Spec, ref: reference.ReferenceRow, tasks: list[str]) -> Row:
    values = ref.per_task.get(spec.key, ())
    if ref.tasks is not None:  # by dataset name, whatever order and spelling our scenario uses
        by_name = {reference.dataset_key(t): v for t, v in zip(ref.tasks, values)}
        aligned = [by_name.get(reference.dataset_key(t)) for t in tasks]
    else:  # by position (CIL steps)
        aligned = [values[i] if i < len(values) else None for i in range(len(tasks))]
    cells = [None if v is None else Cell(v) for v in aligned]
    summaries = [Cell(ref.means[key]) if key in ref.means else None for _, _, key in spec.summaries]
    return Row(f"{ref.label} (reported)", "reported", ref.method, ref.source, cells, summaries,
               [None] * len(summaries))


def _cost(method: str, runs: list[dict]) -> Cost:
    entries = [e for r in runs for e in r["per_task"]]

    def values(key):
        return [e[key] for e in entries if e.get(key) is not None]

    params, memory, wall = values("trainable_params"), values("peak_memory_mb"), values("wall_time_s")
    return Cost(method, len(runs), max(params) if params else None, max(memory) if memory else None,
                statistics.fmean(wall) if wall else None)


def _provenance(runs: list[dict], by_method: dict[str, list[dict]],
                refs: list[reference.ReferenceRow]) -> Provenance:
    setting = _setting(runs[0])

    def distinct(values):
        return sorted({str(v) for v in values})

    versions = [r.get("versions") or {} for r in runs]
    tags = dict.fromkeys(ref.source for ref in refs)  # first-seen order, no duplicates
    return Provenance(
        scenario_version=setting["scenario version"],
        backbone=setting["backbone"],
        pretrained=setting["pretrained tag"],
        prompts=setting["prompt convention"],
        params=_params_of(setting),
        cl_bench=distinct(f"{v.get('cl_bench')} (commit {v.get('git_commit')})" for v in versions),
        packages={p: distinct(v.get(p) for v in versions) for p in PACKAGES},
        devices=distinct(r.get("device") for r in runs),
        switches={m: dict(rs[0].get("switches") or {}) for m, rs in by_method.items()},
        sources=[reference.SOURCES[tag] for tag in tags],
    )


def _notes(refs: list[reference.ReferenceRow], setting: dict) -> list[str]:
    """Why reported rows carry no delta, and the sources' own caveats, each said once."""
    notes = [_protocol_mismatch(ref, setting) for ref in refs]
    notes += [f"{ref.label} [{ref.source}]: {ref.note}" for ref in refs if ref.note]
    return list(dict.fromkeys(n for n in notes if n))


# ---------------------------------------------------------------------------------------------- formatting


def _num(x: float) -> str:
    text = f"{x:.1f}"
    return "0.0" if text == "-0.0" else text


def format_cell(cell: Cell | None, with_n: bool = False) -> str:
    """A cell as text: "65.3 ± 0.4", "65.3" (one seed, or reported), "–" (no value); with_n adds " (n=3)"."""
    if cell is None:
        return "–"
    text = _num(cell.mean) if cell.std is None else f"{_num(cell.mean)} ± {_num(cell.std)}"
    return f"{text} (n={cell.n})" if with_n and cell.n is not None else text


def format_delta(delta: Delta | None) -> str:
    if delta is None:
        return ""
    text = _num(delta.value)
    return text if text == "0.0" or text.startswith("-") else "+" + text


def _int(x: int | None) -> str:
    return "–" if x is None else f"{x:,}"


def _float(x: float | None) -> str:
    return "–" if x is None else _num(x)


def _table_header(table: Table) -> list[str]:
    header = ["Method", *table.columns, *table.summary_columns]
    if table.has_deltas():
        header += [f"Δ {col}" for col in table.summary_columns]
    if table.has_reported():
        header.append("Source")
    return header


def _table_cells(table: Table, row: Row) -> list[str]:
    """One row's strings; the summary cells carry n, the per-task cells do not (same n on a row)."""
    out = [row.label, *(format_cell(c) for c in row.cells), *(format_cell(c, True) for c in row.summaries)]
    if table.has_deltas():
        out += [format_delta(d) for d in row.deltas]
    if table.has_reported():
        out.append(row.source)  # the sources' addresses are listed once, under provenance
    return out


def _describe(lb: Leaderboard) -> str:
    p = lb.provenance
    params = "".join(f", {k} {v}" for k, v in sorted(p.params.items()))
    return (f"Protocol `{lb.protocol}`{params}, scenario version {p.scenario_version}; "
            f"backbone `{p.backbone}` (pretrained `{p.pretrained}`), prompts `{p.prompts}`. "
            f"Tasks in training order: {' → '.join(lb.tasks)}.")


LEGEND = ("Cells: mean ± sample standard deviation over seeds (no ± with one seed); n = seeds averaged. "
          "Rows marked (reported) are published numbers. Δ = our mean − reported mean, shown only where "
          "the reported protocol matches ours (scenario, backbone, pretrained tag, prompt convention).")
COST_HEADER = ["Method", "n", "Trainable params (max)", "Peak memory MB (max)", "Wall time per task s (mean)"]
EXCLUDED_HEADER = ["Path", "Method", "Seed", "Status", "Tasks done"]


def summary(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Our methods on one line each: every table's summary value (MTIL Transfer / Avg. / Last means, CIL
    Avg. / Last), seeds and cost, ranked by the last of those values (Last), best first."""
    # (our rows of a table by method, position among its summary values, column name)
    cols = [({r.method: r for r in t.rows if r.kind == "ours"}, i, t.title if t.summary_columns == ["Mean"] else name)
            for t in lb.tables for i, name in enumerate(t.summary_columns)]
    costs = {c.method: c for c in lb.costs}
    rank_rows, rank_i, _ = cols[-1]

    def score(method: str) -> float:
        cell = rank_rows[method].summaries[rank_i]
        return cell.mean if cell is not None else float("-inf")

    header = ["Method", *(name for _, _, name in cols), "n", "Trainable params", "Wall time per task s"]
    rows = []
    for m in sorted(costs, key=lambda m: (-score(m), m)):
        c = costs[m]
        rows.append([m, *(format_cell(rows_[m].summaries[i]) for rows_, i, _ in cols), str(c.n),
                     _int(c.trainable_params), _float(c.wall_time_per_task_s)])
    return header, rows


def _cost_cells(c: Cost) -> list[str]:
    return [c.method, str(c.n), _int(c.trainable_params), _float(c.peak_memory_mb),
            _float(c.wall_time_per_task_s)]


def _excluded_cells(e: Excluded) -> list[str]:
    return [e.path, e.method, str(e.seed), e.status, f"{e.tasks_done}/{e.tasks_total}"]


def _switches(switches: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(switches.items())) or "none"


def _provenance_lines(lb: Leaderboard) -> list[str]:
    p = lb.provenance
    packages = "; ".join(f"{name} {', '.join(v)}" for name, v in p.packages.items())
    switches = "; ".join(f"{m}: {_switches(s)}" for m, s in p.switches.items())
    lines = [
        f"cl-bench: {', '.join(p.cl_bench)}",
        f"packages: {packages}",
        f"devices (cost columns): {', '.join(p.devices)}",
        f"backbone: {p.backbone}, pretrained tag {p.pretrained}, prompts {p.prompts}",
        f"scenario: {lb.scenario}, version {p.scenario_version}"
        + "".join(f", {k} {v}" for k, v in sorted(p.params.items())),
        f"method switches: {switches}",
    ]
    for s in p.sources:
        where = f" <{s.url}>" if s.url else ""
        lines.append(f"source {s.tag}: {s.citation}{where}" + (f"; {s.note}" if s.note else ""))
    return lines


# ---------------------------------------------------------------------------------------------- renderers


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [_md_row(header), "|" + "---|" * len(header), *(_md_row(r) for r in rows)]


def to_markdown(lb: Leaderboard) -> str:
    """GitHub markdown: a ranked summary, a section per metric table, cost, not-included runs, notes, provenance."""
    out = [f"# Leaderboard: {lb.scenario}", "", _describe(lb), "", LEGEND, ""]
    out += ["## Summary (ranked by Last)", ""] + _md_table(*summary(lb)) + [""]
    for table in lb.tables:
        out += [f"## {table.title}", ""]
        out += _md_table(_table_header(table), (_table_cells(table, row) for row in table.rows))
        out.append("")
    out += ["## Cost", ""] + _md_table(COST_HEADER, map(_cost_cells, lb.costs)) + [""]
    if lb.excluded:
        out += ["## Not included (not finished)", ""]
        out += _md_table(EXCLUDED_HEADER, map(_excluded_cells, lb.excluded)) + [""]
    if lb.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in lb.notes] + [""]
    out += ["## Provenance", ""] + [f"- {line}" for line in _provenance_lines(lb)]
    return "\n".join(out) + "\n"


CSV_COLUMNS = (
    "scenario", "table", "column", "kind", "method", "label", "source", "mean", "std", "n", "delta",
    "delta_vs", "trainable_params", "peak_memory_mb", "wall_time_per_task_s",
)


def to_csv(lb: Leaderboard) -> str:
    """One row per table row x column (cells without a value are left out). Columns:

    scenario; table (metric key: transfer / avg / last, or accuracy for CIL); column (a task name, or the
    summary "Mean" / "Avg." / "Last"); kind ("ours" or "reported"); method (cl-bench method name; for
    reported rows the same method if we implement it, else empty); label (row label); source ("ours" or
    the reference tag); mean, std (sample std over seeds, empty with one seed or for reported numbers),
    n (seeds; empty for reported); delta, delta_vs (summary columns only: our mean - reported mean and
    the row compared with); trainable_params (max over tasks), peak_memory_mb (max), wall_time_per_task_s
    (mean) for our methods. Numbers are unrounded.
    """
    costs = {c.method: c for c in lb.costs}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for table in lb.tables:
        for row in table.rows:
            cost = costs.get(row.method) if row.kind == "ours" else None
            cost_cols = ["", "", ""] if cost is None else [
                _blank(cost.trainable_params), _blank(cost.peak_memory_mb), _blank(cost.wall_time_per_task_s)]
            cols = [(c, cell, None) for c, cell in zip(table.columns, row.cells)]
            cols += list(zip(table.summary_columns, row.summaries, row.deltas))
            for column, cell, delta in cols:
                if cell is None:
                    continue
                writer.writerow([
                    lb.scenario, table.key, column, row.kind, row.method or "", row.label, row.source,
                    cell.mean, _blank(cell.std), _blank(cell.n),
                    "" if delta is None else delta.value, "" if delta is None else delta.versus, *cost_cols,
                ])
    return buf.getvalue()


def _blank(x) -> str:
    return "" if x is None else str(x)


def to_rich(lb: Leaderboard) -> list:
    """rich Tables: the ranked summary, the metric tables, cost, and (if any) the runs not included."""
    from rich.table import Table as RichTable
    from rich.text import Text

    def make(title, header, rows):
        t = RichTable(title=title)
        for i, name in enumerate(header):
            t.add_column(name, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*map(Text, r))  # Text, not markup: labels like "[ZSCL-nb]" are not styles
        return t

    tables = [make(f"{lb.scenario}: summary (ranked by Last)", *summary(lb))]
    tables += [make(f"{lb.scenario}: {t.title}", _table_header(t),
                   [_table_cells(t, row) for row in t.rows]) for t in lb.tables]
    tables.append(make(f"{lb.scenario}: cost", COST_HEADER, map(_cost_cells, lb.costs)))
    if lb.excluded:
        tables.append(make("not included (not finished)", EXCLUDED_HEADER, map(_excluded_cells, lb.excluded)))
    return tables


def print_leaderboard(lb: Leaderboard, console=None) -> None:
    """Print the rich tables, then notes and provenance, to a rich Console (default: a new one)."""
    from rich.console import Console

    console = console or Console()
    console.print(_describe(lb), markup=False)
    for table in to_rich(lb):
        console.print(table)
    for line in lb.notes:
        console.print(f"note: {line}", markup=False)
    for line in _provenance_lines(lb):
        console.print(line, markup=False, style="dim")
