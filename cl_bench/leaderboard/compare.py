"""Which runs may share a table and which may be averaged, decided from their ``setting`` blocks alone
(cl_bench/setting.py): a table holds runs whose settings differ at most under ``method``; seeds of one method
are averaged only when their settings are equal. Operational keys never entered the setting, so runs that
differ only in them (data folders, workers, evaluation batch size) average together."""

from __future__ import annotations

from ..errors import UserError
from ..setting import differences, label
from .runs import run_path


def short(value) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shared(setting: dict) -> dict:
    """The part of a setting every method of one table must share."""
    return {k: v for k, v in setting.items() if k != "method"}


def _own(setting: dict) -> dict:
    """The part of a setting that is the method's own (seeds of one method must share it too)."""
    return {"method": setting["method"]}


def check_comparable(runs: list[dict]) -> None:
    """Refuse, in one line naming both files, anything that would average or tabulate incomparable numbers."""
    base = runs[0]
    for run in runs[1:]:
        for path, va, vb in differences(_shared(base["setting"]), _shared(run["setting"])):
            raise UserError(f"{run_path(base)} and {run_path(run)} are not comparable: {label(path)} differs "
                            f"({short(va)} vs {short(vb)}); build one leaderboard per setting")
    seen: dict[tuple, dict] = {}
    for run in runs:
        other = seen.setdefault((run["method"], run["seed"]), run)
        if other is not run:
            raise UserError(f"{run_path(other)} and {run_path(run)} are both {run['method']} seed {run['seed']}; "
                            "pass each run once")
    by_method: dict[str, dict] = {}
    for run in runs:
        other = by_method.setdefault(run["method"], run)
        for path, va, vb in differences(_own(other["setting"]), _own(run["setting"])):
            raise UserError(f"{run_path(other)} and {run_path(run)} ({run['method']}) cannot be averaged: "
                            f"{label(path)} ({short(va)} vs {short(vb)}) differs; re-run with the same options")
