"""A leaderboard as CSV, one row per table cell with unrounded numbers, for further analysis."""

from __future__ import annotations

import csv
import io

from .model import Leaderboard

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
