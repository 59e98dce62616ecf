"""``cl-bench sweep --status DIR``: the state of every run of a sweep, read from its results files only (so it
works the same for local and SLURM sweeps, and while jobs are still writing)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .sweep import RunSpec

STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow", "failed": "red", "missing": "dim",
         "unreadable": "red"}
ORDER = ("finished", "running", "interrupted", "failed", "unreadable", "missing")


@dataclass
class RunState:
    spec: RunSpec
    state: str  # one of ORDER
    tasks: str = ""  # finished tasks / all tasks
    age_s: float | None = None  # seconds since the results file was last written
    detail: str = ""  # the recorded error line of a failed or interrupted run


def on_disk(root: Path) -> list[RunSpec]:
    """Every ``<scenario>/<method>/seed<N>.json`` below ``root``."""
    found = []
    for path in root.glob("*/*/seed*.json"):
        m = re.fullmatch(r"seed(\d+)\.json", path.name)
        if m and path.parent.parent.name != "logs":
            found.append(RunSpec(path.parent.parent.name, path.parent.name, int(m.group(1))))
    return found


def read_state(root: Path, spec: RunSpec, now: float | None = None) -> RunState:
    path = root / spec.scenario / spec.method / f"seed{spec.seed}.json"
    if not path.is_file():
        return RunState(spec, "missing")
    age = (now or time.time()) - path.stat().st_mtime
    try:
        res = json.loads(path.read_text())
        state, tasks = res["status"], f"{len(res['matrix'])}/{len(res['tasks'])}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return RunState(spec, "unreadable", age_s=age, detail=f"{type(e).__name__}: {e}")
    if state not in ORDER:
        return RunState(spec, "unreadable", tasks, age, f"unknown status {state!r}")
    error = " ".join(str(res.get("error") or "").split())
    return RunState(spec, state, tasks, age, error if state in ("failed", "interrupted") else "")


def collect(root: str | Path, expected: list[RunSpec] | None = None) -> list[RunState]:
    """The expected runs (missing ones included) plus any other run found on disk, in a stable order."""
    root = Path(root)
    specs = sorted(set(expected or []) | set(on_disk(root)))
    now = time.time()
    return [read_state(root, s, now) for s in specs]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def print_status(console: Console, root: str | Path, rows: list[RunState]) -> None:
    t = Table(title=escape(f"sweep status: {root}"), title_justify="left",
              caption="running: the last write was a finished task; a run killed without warning also shows as "
                      "running until it is resumed", caption_justify="left")
    for name in ("scenario", "method", "seed"):
        t.add_column(name, no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("tasks", justify="right", no_wrap=True)
    t.add_column("updated", justify="right", no_wrap=True)
    t.add_column("error", overflow="fold")
    for r in rows:
        style = STYLE[r.state]
        t.add_row(r.spec.scenario, r.spec.method, str(r.spec.seed), f"[{style}]{r.state}[/{style}]", r.tasks,
                  _age(r.age_s), escape(r.detail))
    console.print(t)
    counts = {s: sum(r.state == s for r in rows) for s in ORDER}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} run(s)"
                  if rows else f"no results files under {root}", soft_wrap=True, highlight=False)
