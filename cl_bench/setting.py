"""The ``setting`` block of a results file: everything that must be equal for two runs to be comparable
(docs/results-format.md). Runs whose settings are equal average together as seeds of one method; runs whose
settings differ only under ``method`` belong in one table.

It is built once, from the record and the operational keys declared in cl_bench/config.py and by the method
and scenario, when a run starts (or when a schema-1 file is read), so a reader compares settings without
knowing any key by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def setting_of(res: dict, operational: Iterable[str], scenario_keys: Iterable[str]) -> dict:
    """The setting of a results record. ``scenario_keys``: the parameters that belong to the scenario (its
    defaults); the other parameters are the method's. Operational keys are left out of both."""
    skip, scenario_keys = set(operational), set(scenario_keys)
    params = _plain((res.get("config") or {}).get("params") or {})
    backbone = res.get("backbone") or {}
    return {
        "scenario": {
            "name": res["scenario"],
            "version": res["scenario_version"],
            "protocol": res["protocol"],
            "tasks": list(res["tasks"]),
            "params": {k: params[k] for k in sorted(params) if k in scenario_keys and k not in skip},
        },
        "backbone": {**{k: backbone.get(k) for k in ("name", "pretrained", "prompts")},
                     "precision": backbone.get("precision") or _v1_precision(res, params)},
        "method": {
            "name": res["method"],
            "params": {k: params[k] for k in sorted(params) if k not in scenario_keys and k not in skip},
            "switches": {k: v for k, v in sorted(_plain(res.get("switches") or {}).items()) if k not in skip},
        },
    }


def _v1_precision(res: dict, params: dict) -> str:
    """Files written before the ``precision`` parameter: fp16 autocast ran where ``amp`` was on and the device
    was CUDA, fp32 everywhere else."""
    on_cuda = str(res.get("device", "")).startswith("cuda")
    return "fp16" if on_cuda and params.get("amp", True) else "fp32"


def _plain(value: Any) -> Any:
    """JSON-normalised (tuples become lists), so a setting compares equal before and after a round trip."""
    return json.loads(json.dumps(value))


def differences(a: dict, b: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(path, value in a, value in b) for every leaf that differs, in a's key order (lists are leaves)."""
    for key in [*a, *(k for k in b if k not in a)]:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            yield from differences(va, vb, (*path, key))
        elif va != vb:
            yield (*path, key), va, vb


_LABELS = {
    ("scenario", "name"): "scenario",
    ("scenario", "version"): "scenario version",
    ("scenario", "protocol"): "protocol",
    ("scenario", "tasks"): "task list",
    ("backbone", "name"): "backbone",
    ("backbone", "pretrained"): "pretrained tag",
    ("backbone", "prompts"): "prompt convention",
    ("backbone", "precision"): "numeric precision",
    ("method", "name"): "method",
}
_GROUPS = {("scenario", "params"): "scenario parameter", ("method", "params"): "hyper-parameter",
           ("method", "switches"): "method switch"}


def label(path: tuple[str, ...]) -> str:
    """How a setting path reads in an error message: ("method", "params", "lr") -> "hyper-parameter lr"."""
    if path in _LABELS:
        return _LABELS[path]
    if path[:2] in _GROUPS:
        return " ".join([_GROUPS[path[:2]], *path[2:]])
    return ".".join(path)
