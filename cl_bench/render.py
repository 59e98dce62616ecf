"""Terminal rendering with rich: progress bars, a run's accuracy matrix and metric tables, and leaderboards."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import protocols
from .leaderboard.model import Leaderboard
from .leaderboard.text import (
    EXCLUDED_HEADER,
    cost_rows,
    describe,
    excluded_cells,
    provenance_lines,
    summary,
    table_cells,
    table_header,
)


def make_progress(console: Console, quiet: bool) -> Progress | None:
    """Progress bars, or None when quiet or when stdout is not a terminal."""
    if quiet or not console.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def matrix_table(res: dict) -> Table:
    tasks = res["tasks"]
    t = Table(title=f"Accuracy (%) — {res['method']} on {res['scenario']} (seed {res['seed']}) "
                    f"[{res['status']}]", title_justify="left")
    t.add_column("after", style="bold")
    for name in tasks:
        t.add_column(name, justify="right")
    if res["zero_shot"] is not None:
        t.add_row("zero-shot", *map(_fmt, res["zero_shot"]), style="dim")
    for j, row in enumerate(res["matrix"]):
        t.add_row(tasks[j], *map(_fmt, row))
    return t


def metrics_table(res: dict) -> Table | None:
    """A run's metrics, one row per table of its protocol (the per-task values, then the summaries)."""
    m = res.get("metrics")
    if not m:
        return None
    protocol = protocols.get(res["protocol"])
    summary_columns = list(dict.fromkeys(col for spec in protocol.tables for col, _, _ in spec.summaries))
    t = Table(title=protocol.metrics_title, title_justify="left")
    t.add_column("metric", style="bold")
    for name in res["tasks"]:
        t.add_column(name, justify="right")
    for col in summary_columns:
        t.add_column(col, justify="right", style="bold")
    for spec in protocol.tables:
        summaries = {col: _fmt(v) for (col, _, _), v in zip(spec.summaries, spec.summary_values(m))}
        t.add_row(spec.label, *map(_fmt, spec.values(m)), *(summaries.get(c, "") for c in summary_columns))
    return t


def cost_table(res: dict) -> Table:
    t = Table(title="Cost per task", title_justify="left")
    for col in ("task", "train s", "eval s", "peak MB", "trainable"):
        t.add_column(col, justify="right" if col != "task" else "left")
    for e in res["per_task"]:
        t.add_row(e["task"], f"{e['train_time_s']:.1f}", f"{e['eval_time_s']:.1f}", f"{e['peak_memory_mb']:.0f}",
                  f"{e['trainable_params']:,}")
    return t


def print_results(console: Console, res: dict) -> None:
    if res.get("converted_from"):
        console.print(f"(results schema {res['converted_from']}, read as schema {res['schema_version']})",
                      style="dim", markup=False)
    console.print(matrix_table(res))
    mt = metrics_table(res)
    if mt is not None:
        console.print(mt)
    if res["per_task"]:
        console.print(cost_table(res))
    if res.get("error"):
        console.print(f"[red]{res['status']}: {res['error']}[/red]")


def to_rich(lb: Leaderboard) -> list:
    """rich Tables: the ranked summary, the metric tables, cost, and (if any) the runs not included."""

    def make(title, header, rows):
        t = Table(title=title)
        for i, name in enumerate(header):
            t.add_column(name, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*map(Text, r))  # Text, not markup: labels like "[ZSCL-nb]" are not styles
        return t

    tables = [make(f"{lb.scenario}: summary (ranked by Last)", *summary(lb))]
    tables += [make(f"{lb.scenario}: {t.title}", table_header(t),
                   [table_cells(t, row) for row in t.rows]) for t in lb.tables]
    tables.append(make(f"{lb.scenario}: cost", *cost_rows(lb)))
    if lb.excluded:
        tables.append(make("not included (not finished)", EXCLUDED_HEADER, map(excluded_cells, lb.excluded)))
    return tables


def print_leaderboard(lb: Leaderboard, console=None) -> None:
    """Print the rich tables, then notes and provenance, to a rich Console (default: a new one)."""
    console = console or Console()
    console.print(describe(lb), markup=False)
    for table in to_rich(lb):
        console.print(table)
    for line in lb.notes:
        console.print(f"note: {line}", markup=False)
    for line in provenance_lines(lb):
        console.print(line, markup=False, style="dim")
