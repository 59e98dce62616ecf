"""Reading the results files a leaderboard is built from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import UserError
from ..results import load_results

PATH_KEY = "_path"  # where load_runs found a run; added to the dict, not part of the results schema


def load_runs(paths: Iterable[str | Path]) -> list[dict]:
    """Read results files (schema 1 ones converted). A directory is searched recursively for ``seed*.json``;
    a file given twice (directly and through its directory) is read once. Each run records its path under
    ``PATH_KEY``."""
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


def run_path(run: dict) -> str:
    """Where a run was read from (or where it would be, for a run built in memory)."""
    return run.get(PATH_KEY) or f"{run['scenario']}/{run['method']}/seed{run['seed']}.json"
