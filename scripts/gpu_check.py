"""Helpers of scripts/gpu_check.sh (run from the repository root):

  entry-points DIR      register this checkout's methods and scenarios (pyproject.toml's entry points) in a
                        dist-info under DIR, for a checkout that was never `pip install`ed (or an install of
                        other code): put DIR on PYTHONPATH after the checkout.
  data DIR NAME...      write the tests' miniature copies of the named MTIL datasets under DIR and check that
                        each loads (`cl-bench data check`'s logic, on those datasets only).
  summary OUT           one table of the bench reports and the MTIL run under OUT, and OUT/summary.json.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path


def entry_points(target: Path) -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    info = target / f"cl_bench-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = {**project["entry-points"], "console_scripts": project["scripts"]}
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) + "\n" for group, items in groups.items()))


def data(root: Path, names: list[str]) -> None:
    sys.path.insert(0, "tests")
    import real_data_fixtures as fx

    from cl_bench.benchmarks.real import check_data

    fx.make_all(root, names)
    rows = check_data(names, root)
    for r in rows:
        print(f"  {r.dataset}: {r.status} (train {r.train}, test {r.test})")
    if any(r.status != "found" for r in rows):
        sys.exit(f"miniature data under {root} does not load")


def summary(out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    rows, record = [], {"bench": [], "mtil": None}
    for path in sorted((out / "bench").glob("*.json")):
        rep = json.loads(path.read_text())
        record["bench"].append(rep)
        train, ev = rep["train"] or {}, rep["eval"]
        label = f"bench {rep['method']}" + (" (compiled)" if rep.get("compile") else "")
        rows.append([label, rep["backbone"]["name"], rep["precision"],
                     _num(train.get("images_per_s")), _num(ev["images_per_s"]), f"{rep['peak_memory_mb'] / 1024:.2f}",
                     _pct(train.get("mfu")), _pct(ev["mfu"]), "", ""])
    results = sorted((out / "runs").rglob("seed*.json"))
    if results:
        res = json.loads(results[0].read_text())
        wall = sum(t["wall_time_s"] for t in res["per_task"])
        peak = max((t["peak_memory_mb"] for t in res["per_task"]), default=0)
        matrix = "; ".join(f"after {res['tasks'][j]}: " + " ".join(_acc(a) for a in row)
                           for j, row in enumerate(res["matrix"]))
        record["mtil"] = {"method": res["method"], "status": res["status"], "tasks": res["tasks"],
                          "zero_shot": res["zero_shot"], "matrix": res["matrix"], "task_wall_time_s": wall,
                          "run_wall_time_s": _read_float(out / "mtil_seconds"), "file": str(results[0])}
        params = res["config"]["params"]
        precision = res["backbone"].get("precision") or params.get("precision", "?")
        rows.append([f"mtil {res['method']} ({res['status']})", res["backbone"]["name"], precision, "", "",
                     f"{peak / 1024:.2f}", "", "", matrix,
                     f"{wall:.0f} s tasks, {record['mtil']['run_wall_time_s'] or 0:.0f} s total"])
    t = Table(title=f"gpu_check summary ({(record['bench'] or [{}])[0].get('device', '?')})", title_justify="left")
    for col in ("check", "backbone", "precision", "train img/s", "eval img/s", "peak GiB", "MFU train", "MFU eval",
                "MTIL matrix (acc %)", "time"):
        t.add_column(col, justify="right" if "img/s" in col or "MFU" in col or "GiB" in col else "left")
    for r in rows:
        t.add_row(*r)
    Console(width=200).print(t)
    (out / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"summary: {out / 'summary.json'}")


def _num(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _acc(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "entry-points":
        entry_points(Path(rest[0]))
    elif cmd == "data":
        data(Path(rest[0]), rest[1:])
    elif cmd == "summary":
        summary(Path(rest[0]))
    else:
        sys.exit(__doc__)
