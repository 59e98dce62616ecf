"""One frozen RunConfig per run. Hyper-parameters are layered: scenario defaults < runner defaults <
method defaults < method defaults for the scenario's profile < method defaults for the scenario by name
< config file < --set overrides. Every key is validated against the known ones, values by type."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import UserError
from .method import RUN_DEFAULTS, CLMethod
from .precision import CHOICES as PRECISIONS
from .scenario import Scenario

# Keys whose value may be one int per task instead of a single int.
PER_TASK_KEYS = {"epochs"}


@dataclass(frozen=True)
class RunConfig:
    method: str
    scenario: str
    backbone: str
    pretrained: str | None
    seed: int
    device: str
    out: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["params"] = dict(self.params)
        return d


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings -> dict; values are parsed as YAML scalars/lists (1e-3, true, [5, 10])."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r} (e.g. --set lr=1e-4)")
        try:
            out[key.strip()] = _numbers(yaml.safe_load(raw)) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _numbers(v: Any) -> Any:
    """YAML 1.1 reads 1e-3 as a string; users mean a number."""
    if isinstance(v, list):
        return [_numbers(x) for x in v]
    if isinstance(v, dict):
        return {k: _numbers(x) for k, x in v.items()}
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def read_config_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        data = _numbers(yaml.safe_load(p.read_text(encoding="utf-8")) or {})
    except UnicodeDecodeError:
        raise UserError(f"config file {p} is not UTF-8 text; save it as UTF-8 YAML") from None
    except yaml.YAMLError as e:
        raise UserError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must be a mapping of key: value")
    return data


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Check ``value`` against the type of ``default`` (None default: anything goes)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int) and key in PER_TASK_KEYS and isinstance(value, list):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif isinstance(value, type(default)):
        return value
    raise UserError(f"{key}={value!r} has the wrong type: expected {type(default).__name__} "
                    f"like the default {default!r}")


def _int_at_least(lo: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _number(lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False):
    def ok(v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    return ok


_POS_INT, _NONNEG_INT = ("a positive integer", _int_at_least(1)), ("an integer >= 0", _int_at_least(0))
_POS = ("a finite number > 0", _number(0, lo_open=True))
_NONNEG = ("a finite number >= 0", _number(0))
_UNIT = ("a number in [0, 1]", _number(0, 1))
_ENERGY = ("an energy fraction >= 0 (0 turns the subspace off, above 1 protects every direction)", _number(0))
# The valid range of each known hyper-parameter, checked after all layers are merged: a bad value is refused
# before anything runs, naming the key, the value and the range. Keys not listed are checked by type only.
RULES: dict[str, tuple[str, Any]] = {
    "batch_size": _POS_INT, "eval_batch_size": _POS_INT, "iterations": _NONNEG_INT, "warmup": _NONNEG_INT,
    "num_workers": _NONNEG_INT, "rank": _POS_INT, "train_per_class": _POS_INT, "test_per_class": _POS_INT,
    "steps": _POS_INT, "ref_batch_size": _POS_INT, "ref_count": _POS_INT, "we_freq": _NONNEG_INT,
    "shots": _POS_INT, "svd_oversample": _POS_INT, "svd_niter": _NONNEG_INT,
    "lr": _POS, "alpha": _POS, "distill_T": _POS, "head_scale": _POS, "saturation_eps": _POS,
    "weight_decay": _NONNEG, "w_image": _NONNEG, "w_text": _NONNEG, "w_l2": _NONNEG,
    "lambda1": _NONNEG, "lambda2": _NONNEG,
    "label_smoothing": ("a number in [0, 1)", _number(0, 1, hi_open=True)),
    "wise_alpha": _UNIT, "lambda_b": _UNIT, "lambda_e": _UNIT, "v_weight_threshold": _ENERGY,
    "t_weight_threshold": _ENERGY, "v_feature_threshold": _ENERGY, "t_feature_threshold": _ENERGY,
    "epochs": ("a positive integer, or a list of one positive integer per task",
               lambda v: _int_at_least(1)(v) or (isinstance(v, list) and bool(v) and all(map(_int_at_least(1), v)))),
    "deficient_columns": ("one of keep, drop, reproject", lambda v: v in ("keep", "drop", "reproject")),
    "deficient_eps": _POS, "hidden_dim": _POS_INT, "ridge": _POS, "gamma": _POS, "fusion_weight": _UNIT,
    "max_per_class": _NONNEG_INT,
    "precision": ("one of " + ", ".join(PRECISIONS), lambda v: v in PRECISIONS),
    "lr_per_task": ("a mapping of task name to a finite learning rate >= 0",
                    lambda v: isinstance(v, dict) and all(_number(0)(x) for x in v.values())),
}
SEED_RANGE = (0, 2**32)


def validate_params(params: Mapping[str, Any]) -> None:
    for key, (what, ok) in RULES.items():
        if key in params and not ok(params[key]):
            raise UserError(f"{key}={params[key]!r} is out of range: {key} must be {what} (--set {key}=...)")


def resolve_params(scenario: Scenario, method: type[CLMethod], file_values: Mapping[str, Any],
                   overrides: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {}
    for layer in (scenario.defaults, RUN_DEFAULTS, method.defaults_for(scenario.profile, scenario.name)):
        base.update(layer)
    for source, layer in (("config file", file_values), ("--set", overrides)):
        unknown = sorted(set(layer) - set(base))
        if unknown:
            raise UserError(f"unknown {source} key(s) {', '.join(unknown)} for {method.NAME} on "
                            f"{scenario.name}; valid keys: {', '.join(sorted(base))}")
        for k, v in layer.items():
            base[k] = _coerce(k, base[k], v)
    validate_params(base)
    return base


def make_config(*, method: type[CLMethod], scenario: Scenario, backbone: str | None, pretrained: str | None,
                seed: int, device: str, out: str, config_file: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> RunConfig:
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed < SEED_RANGE[1]:
        raise UserError(f"seed {seed!r} is out of range: use an integer in [0, 2**32)")
    file_values = read_config_file(config_file)
    # A config file may also carry the run-level options; command-line flags win where given.
    backbone = backbone or file_values.pop("backbone", None) or scenario.default_backbone
    pretrained = pretrained or file_values.pop("pretrained", None)
    if pretrained is None and backbone == scenario.default_backbone:
        pretrained = scenario.default_pretrained
    params = resolve_params(scenario, method, file_values, overrides or {})
    return RunConfig(method=method.NAME, scenario=scenario.name, backbone=backbone, pretrained=pretrained,
                     seed=seed, device=device, out=out, params=MappingProxyType(params))


# Run-level keys that cannot change what a run computes: where it writes, what it runs on, how fast it
# evaluates. Methods and scenarios add their own (paths to their inputs) as ``OPERATIONAL``. --resume and
# the leaderboard both ignore exactly these keys (docs/results-format.md); every other key must match.
OPERATIONAL_KEYS = frozenset({"out", "device", "eval_batch_size", "num_workers"})


def operational_keys(*declarers: object) -> frozenset[str]:
    """The run-level operational keys plus those declared (``OPERATIONAL``) by a method and a scenario
    (None: not known here, e.g. a plugin that is not installed)."""
    return OPERATIONAL_KEYS.union(*(getattr(d, "OPERATIONAL", ()) for d in declarers if d is not None))


def same_config(a: Mapping, b: Mapping, operational: frozenset[str] = OPERATIONAL_KEYS) -> list[str]:
    """Keys whose values differ between two config dicts (JSON-normalised), operational keys left out."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    keys = sorted(set(a) | set(b))
    diff = [k for k in keys if k not in operational and k != "params" and a.get(k) != b.get(k)]
    pa, pb = a.get("params", {}), b.get("params", {})
    diff += [f"params.{k}" for k in sorted(set(pa) | set(pb)) if k not in operational and pa.get(k) != pb.get(k)]
    return diff
