"""Results files of one scenario -> a ``Leaderboard``: mean ± std over seeds per method and metric, costs,
provenance, and the papers' reported rows beside ours.

Rules that keep the numbers honest:

- only ``finished`` runs are averaged; the others are listed under "not included";
- runs whose settings differ beyond the method are never tabulated together, nor seeds of one method whose
  settings differ at all (compare.py, UserError naming the two files);
- a delta against a reported row is shown only where its protocol matches ours (reported.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .. import protocols, reference
from ..errors import UserError
from ..protocols import TableSpec
from ..reference import ReferenceRow
from ..results import compute_metrics
from . import reported
from .compare import check_comparable
from .model import Cell, Cost, Delta, Excluded, Leaderboard, Provenance, Row, Table
from .runs import run_path

PACKAGES = ("python", "torch", "open_clip", "avalanche")


def build_leaderboard(runs: Sequence[dict], scenario: str | None = None) -> Leaderboard:
    """Group finished runs of one scenario by method and tabulate every metric; see the module docstring."""
    if not runs:
        raise UserError("no results to tabulate; pass results folders or seed<N>.json files")
    scenario, runs = _select_scenario(runs, scenario)
    runs = sorted(runs, key=lambda r: (r["method"], r["seed"], run_path(r)))
    finished = [r for r in runs if r["status"] == "finished"]
    excluded = [_excluded(r) for r in runs if r["status"] != "finished"]
    if not finished:
        raise UserError(f"no finished runs for scenario {scenario!r} ({len(excluded)} not finished: "
                        f"{', '.join(e.path for e in excluded)}); finish or resume them first")
    check_comparable(finished)

    by_method: dict[str, list[dict]] = {}
    for run in finished:
        by_method.setdefault(run["method"], []).append(run)
    metrics = {m: [_metrics(r) for r in rs] for m, rs in by_method.items()}

    setting = finished[0]["setting"]
    protocol = protocols.get(setting["scenario"]["protocol"])
    refs = reported.rows_for(scenario, setting)
    tasks = list(setting["scenario"]["tasks"])
    return Leaderboard(
        scenario=scenario,
        protocol=protocol,
        tasks=tasks,
        tables=[_table(spec, tasks, metrics, refs, setting) for spec in protocol.tables],
        costs=[_cost(m, rs) for m, rs in by_method.items()],
        excluded=excluded,
        provenance=_provenance(finished, by_method, refs, protocol),
        notes=reported.notes(refs, setting),
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
    return Excluded(run_path(run), run["method"], run["seed"], run["status"], done, total)


def _metrics(run: dict) -> dict:
    """The stored metrics, or recomputed from the matrix if a writer left them out."""
    metrics = run["metrics"] or compute_metrics(run)
    if metrics is None:
        raise UserError(f"{run_path(run)} is marked finished but its accuracy matrix is incomplete; re-run it")
    return metrics


def _aggregate(values: Sequence[float | None]) -> Cell | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Cell(statistics.fmean(values), std, len(values))


def _table(spec: TableSpec, tasks: list[str], metrics: dict[str, list[dict]], refs: list[ReferenceRow],
           setting: dict) -> Table:
    rows = [_our_row(spec, method, ms, tasks, refs, setting) for method, ms in metrics.items()]
    rows += [reported.reported_row(spec, ref, tasks) for ref in refs if reported.shows_in(spec, ref)]
    return Table(spec.key, spec.title, list(tasks), [col for col, _, _ in spec.summaries], rows)


def _our_row(spec: TableSpec, method: str, ms: list[dict], tasks: list[str], refs: list[ReferenceRow],
             setting: dict) -> Row:
    per_task = [spec.values(m) for m in ms]
    cells = [_aggregate([values[i] for values in per_task]) for i in range(len(tasks))]
    summaries = [_aggregate(values) for values in zip(*(spec.summary_values(m) for m in ms))]
    match = reported.delta_target(refs, method, setting)
    deltas = []
    for cell, (_, _, key) in zip(summaries, spec.summaries):
        if match is None or cell is None or key not in match.means:
            deltas.append(None)
        else:
            deltas.append(Delta(cell.mean - match.means[key], f"{match.label} [{match.source}]"))
    return Row(method, "ours", method, "ours", cells, summaries, deltas, n=len(ms))


def _cost(method: str, runs: list[dict]) -> Cost:
    entries = [e for r in runs for e in r["per_task"]]

    def values(key):
        return [e[key] for e in entries if e.get(key) is not None]

    params, memory, wall = values("trainable_params"), values("peak_memory_mb"), values("wall_time_s")
    gpu_hours = throughput = None
    if runs and all(str(r.get("device", "")).startswith("cuda") for r in runs):
        gpu_hours = sum(wall) / 3600
        timed = [e for e in entries if e.get("train_images") and e.get("train_time_s")]
        if timed:
            throughput = sum(e["train_images"] for e in timed) / sum(e["train_time_s"] for e in timed)
    return Cost(method, len(runs), max(params) if params else None, max(memory) if memory else None,
                statistics.fmean(wall) if wall else None, gpu_hours, throughput)


def _provenance(runs: list[dict], by_method: dict[str, list[dict]], refs: list[ReferenceRow],
                protocol: protocols.Protocol) -> Provenance:
    setting = runs[0]["setting"]
    backbone, params = setting["backbone"], setting["scenario"]["params"]

    def distinct(values):
        return sorted({str(v) for v in values})

    versions = [r.get("versions") or {} for r in runs]
    tags = dict.fromkeys(ref.source for ref in refs)  # first-seen order, no duplicates
    return Provenance(
        scenario_version=setting["scenario"]["version"],
        backbone=backbone["name"],
        pretrained=backbone["pretrained"],
        prompts=backbone["prompts"],
        params={k: params[k] for k in protocol.key_params if params.get(k) is not None},
        cl_bench=distinct(f"{v.get('cl_bench')} (commit {v.get('git_commit')})" for v in versions),
        packages={p: distinct(v.get(p) for v in versions) for p in PACKAGES},
        devices=distinct(r.get("device") for r in runs),
        switches={m: dict(rs[0]["setting"]["method"]["switches"]) for m, rs in by_method.items()},
        sources=[reference.SOURCES[tag] for tag in tags],
    )
