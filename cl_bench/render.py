"""Terminal rendering with rich: progress bars, the accuracy matrix and the metric tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


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
    m = res.get("metrics")
    if not m:
        return None
    tasks = res["tasks"]
    if res["protocol"] == "cil":
        t = Table(title="Class-incremental accuracy (%) on all classes seen so far", title_justify="left")
        t.add_column("metric", style="bold")
        for name in tasks:
            t.add_column(name, justify="right")
        t.add_column("Avg.", justify="right", style="bold")
        t.add_column("Last", justify="right", style="bold")
        t.add_row("accuracy", *map(_fmt, m["steps"]), _fmt(m["avg"]), _fmt(m["last"]))
        return t
    t = Table(title="MTIL metrics (%)", title_justify="left")
    t.add_column("metric", style="bold")
    for name in tasks:
        t.add_column(name, justify="right")
    t.add_column("mean", justify="right", style="bold")
    for key, label in (("transfer", "Transfer"), ("avg", "Avg."), ("last", "Last")):
        t.add_row(label, *map(_fmt, m[key]["per_task"]), _fmt(m[key]["mean"]))
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
    console.print(matrix_table(res))
    mt = metrics_table(res)
    if mt is not None:
        console.print(mt)
    if res["per_task"]:
        console.print(cost_table(res))
    if res.get("error"):
        console.print(f"[red]{res['status']}: {res['error']}[/red]")
