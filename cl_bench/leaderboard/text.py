"""Leaderboard values as text, shared by the markdown (markdown.py) and terminal (cl_bench/render.py)
renderings: cells, headers, the ranked summary, the description line and the provenance footer."""

from __future__ import annotations

import json

from .model import Cell, Cost, Delta, Excluded, Leaderboard, Row, Table


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


def table_header(table: Table) -> list[str]:
    header = ["Method", *table.columns, *table.summary_columns]
    if table.has_deltas():
        header += [f"Δ {col}" for col in table.summary_columns]
    if table.has_reported():
        header.append("Source")
    return header


def table_cells(table: Table, row: Row) -> list[str]:
    """One row's strings; the summary cells carry n, the per-task cells do not (same n on a row)."""
    out = [row.label, *(format_cell(c) for c in row.cells), *(format_cell(c, True) for c in row.summaries)]
    if table.has_deltas():
        out += [format_delta(d) for d in row.deltas]
    if table.has_reported():
        out.append(row.source)  # the sources' addresses are listed once, under provenance
    return out


def describe(lb: Leaderboard) -> str:
    p = lb.provenance
    params = "".join(f", {k} {v}" for k, v in sorted(p.params.items()))
    return (f"Protocol `{lb.protocol.id}`{params}, scenario version {p.scenario_version}; "
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


GPU_COST_HEADER = ["GPU-hours (total)", "Train img/s"]


def cost_header(lb: Leaderboard) -> list[str]:
    """The cost columns; GPU-hours and training throughput only when some method's runs came from a GPU."""
    return COST_HEADER + (GPU_COST_HEADER if any(c.gpu_hours is not None for c in lb.costs) else [])


def cost_rows(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """The cost table's header and one row per method."""
    header = cost_header(lb)
    return header, [cost_cells(c, gpu=header != COST_HEADER) for c in lb.costs]


def cost_cells(c: Cost, gpu: bool = False) -> list[str]:
    cells = [c.method, str(c.n), _int(c.trainable_params), _float(c.peak_memory_mb), _float(c.wall_time_per_task_s)]
    if gpu:
        cells += [_float(c.gpu_hours), _float(c.train_images_per_s)]
    return cells


def excluded_cells(e: Excluded) -> list[str]:
    return [e.path, e.method, str(e.seed), e.status, f"{e.tasks_done}/{e.tasks_total}"]


def _switches(switches: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(switches.items())) or "none"


def provenance_lines(lb: Leaderboard) -> list[str]:
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
