"""Results files: the contract between the runner, the renderer and the leaderboard.

One versioned JSON file per run at ``<out>/<scenario>/<method>/seed<N>.json``, rewritten atomically
(temp file + rename) after every task, so an interrupted run keeps every finished task. Schema 2 adds the
``setting`` block (cl_bench/setting.py); schema-1 files are converted when read (docs/results-format.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import protocols
from .errors import UserError
from .setting import setting_of

SCHEMA_VERSION = 2
STATUSES = ("running", "finished", "failed", "interrupted")
# Keys every results file has; see `new_results` for their meaning.
V1_KEYS = (
    "schema_version", "status", "method", "scenario", "scenario_version", "protocol", "seed",
    "config", "backbone", "versions", "device", "tasks", "test_sizes", "zero_shot", "matrix",
    "metrics", "per_task",
)
REQUIRED_KEYS = (*V1_KEYS, "setting", "operational_keys")


def results_path(out: str | os.PathLike, scenario: str, method: str, seed: int) -> Path:
    return Path(out) / scenario / method / f"seed{seed}.json"


def new_results(*, method, scenario, scenario_version, protocol, seed, config, backbone, versions,
                device, tasks, test_sizes, switches=None, operational=(), scenario_keys=()) -> dict:
    """A fresh results record.

    - ``protocol``: the protocol's id (cl_bench/protocols.py): "mtil" (task-aware, every test set after
      every task) or "cil" (joint classifier over the classes seen so far; cells of unseen tasks are null).
    - ``setting``: what must match for two runs to be comparable, built from the record, leaving out the
      ``operational`` keys; ``scenario_keys`` are the parameters that are the scenario's, not the method's.
    - ``operational_keys``: the keys left out of the setting (declared by config, method and scenario).
    - ``zero_shot``: accuracies (%) per task before any training (not part of the metric matrix).
    - ``matrix``: one row per finished task, ``matrix[j][i]`` = accuracy (%) on task i after task j.
    - ``per_task``: one entry per finished task with wall/train/eval time, peak memory and
      trainable parameters, plus method-specific diagnostics under ``extra``.
    """
    res = {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "error": None,
        "method": method,
        "scenario": scenario,
        "scenario_version": scenario_version,
        "protocol": protocols.get(protocol).id,
        "seed": seed,
        "config": config,
        "switches": switches or {},
        "backbone": backbone,
        "versions": versions,
        "device": device,
        "tasks": list(tasks),
        "test_sizes": list(test_sizes),
        "zero_shot": None,
        "matrix": [],
        "metrics": None,
        "per_task": [],
    }
    res["setting"] = setting_of(res, operational, scenario_keys)
    res["operational_keys"] = sorted(operational)
    return res


def compute_metrics(res: dict) -> dict | None:
    """Metrics of a complete matrix (None while tasks are missing), as its protocol defines them."""
    R, T = res["matrix"], len(res["tasks"])
    if len(R) != T:
        return None
    return protocols.get(res["protocol"]).metrics(R, res["test_sizes"])


def write_results(res: dict, path: str | os.PathLike) -> None:
    """Atomic write: a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_results(path: str | os.PathLike) -> dict:
    """Read and validate a results file; malformed input is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file not found: {path} (pass a seed<N>.json written by `cl-bench run`)")
    try:
        res = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-run or delete it") from None
    if not isinstance(res, dict) or "schema_version" not in res:
        raise UserError(f"{path} is not a cl-bench results file (no schema_version)")
    if res["schema_version"] not in (1, SCHEMA_VERSION):
        raise UserError(f"{path} has schema version {res['schema_version']!r}, this cl-bench reads 1 and "
                        f"{SCHEMA_VERSION}; regenerate it with this version")
    missing = [k for k in (V1_KEYS if res["schema_version"] == 1 else REQUIRED_KEYS) if k not in res]
    if missing:
        raise UserError(f"{path} is missing keys {missing}; it is not a complete cl-bench results file")
    if res["status"] not in STATUSES:
        raise UserError(f"{path} has unknown status {res['status']!r}")
    problem = schema_problem(res)
    if problem:
        raise UserError(f"{path}: {problem}; it is not a valid cl-bench results file (re-run it or delete it)")
    return from_v1(res) if res["schema_version"] == 1 else res


def from_v1(res: dict) -> dict:
    """A schema-1 record as schema 2, marked ``converted_from: 1``. Its setting is built the way a run builds
    it, from the operational keys and scenario parameters that the installed method and scenario declare
    (one that is not installed declares nothing: its every key counts)."""
    from . import registry
    from .config import operational_keys

    method = registry.methods().get(res["method"], (None,))[0]
    scenario = registry.scenarios().get(res["scenario"], (None,))[0]
    operational = operational_keys(method, scenario)
    scenario_keys = scenario.defaults if scenario is not None else ()
    return {**res, "schema_version": SCHEMA_VERSION, "converted_from": 1,
            "setting": setting_of(res, operational, scenario_keys), "operational_keys": sorted(operational)}


def _accuracy(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100)


def schema_problem(res: dict) -> str | None:
    """The first field that does not have its documented type and shape (None: the file is valid)."""
    def is_list(v, of) -> bool:
        return isinstance(v, list) and all(of(x) for x in v)

    if not (isinstance(res["tasks"], list) and res["tasks"] and is_list(res["tasks"], lambda x: isinstance(x, str))):
        return "field tasks must be a non-empty list of task names"
    T = len(res["tasks"])
    checks = [
        ("protocol", isinstance(res["protocol"], str) and res["protocol"] in protocols.PROTOCOLS,
         f"one of {', '.join(sorted(protocols.PROTOCOLS))}"),
        ("method", isinstance(res["method"], str), "a string"),
        ("scenario", isinstance(res["scenario"], str), "a string"),
        ("seed", isinstance(res["seed"], int) and not isinstance(res["seed"], bool), "an integer"),
        ("config", isinstance(res["config"], dict) and isinstance(res["config"].get("params"), dict),
         "a mapping with params"),
        ("test_sizes", is_list(res["test_sizes"], lambda x: isinstance(x, int) and x >= 0)
         and len(res["test_sizes"]) == T, f"a list of {T} sample counts"),
        ("zero_shot", res["zero_shot"] is None or (is_list(res["zero_shot"], _accuracy) and len(res["zero_shot"]) == T),
         f"null or a list of {T} accuracies in [0, 100]"),
        ("matrix", is_list(res["matrix"], lambda r: is_list(r, _accuracy) and len(r) == T) and len(res["matrix"]) <= T,
         f"at most {T} rows of {T} accuracies in [0, 100] or null"),
        ("per_task", is_list(res["per_task"], lambda x: isinstance(x, dict))
         and len(res["per_task"]) == len(res["matrix"]), "one record per matrix row"),
    ]
    if "setting" in res:
        setting = res["setting"]
        checks.append(("setting", isinstance(setting, dict) and all(
            isinstance(setting.get(k), dict) for k in ("scenario", "backbone", "method")),
            "a mapping with scenario, backbone and method"))
    for name, ok, what in checks:
        if not ok:
            return f"field {name} must be {what}"
    return None
