"""One frozen RunConfig per run. Hyper-parameters are layered: scenario defaults < runner defaults <
method defaults < method defaults for the scenario's profile < method defaults for the scenario by name
< config file < --set overrides. Every key is validated against the known ones, values by type."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .api import RUN_DEFAULTS, Method, Scenario
from .errors import UserError

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
        data = _numbers(yaml.safe_load(p.read_text()) or {})
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


def resolve_params(scenario: Scenario, method: Method, file_values: Mapping[str, Any],
                   overrides: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {}
    for layer in (scenario.defaults, RUN_DEFAULTS, method.defaults,
                  method.profile_defaults.get(scenario.profile, {}),
                  method.profile_defaults.get(scenario.name, {})):
        base.update(layer)
    for source, layer in (("config file", file_values), ("--set", overrides)):
        unknown = sorted(set(layer) - set(base))
        if unknown:
            raise UserError(f"unknown {source} key(s) {', '.join(unknown)} for {method.name} on "
                            f"{scenario.name}; valid keys: {', '.join(sorted(base))}")
        for k, v in layer.items():
            base[k] = _coerce(k, base[k], v)
    return base


def make_config(*, method: Method, scenario: Scenario, backbone: str | None, pretrained: str | None,
                seed: int, device: str, out: str, config_file: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> RunConfig:
    file_values = read_config_file(config_file)
    # A config file may also carry the run-level options; command-line flags win where given.
    backbone = backbone or file_values.pop("backbone", None) or scenario.default_backbone
    pretrained = pretrained or file_values.pop("pretrained", None)
    if pretrained is None and backbone == scenario.default_backbone:
        pretrained = scenario.default_pretrained
    params = resolve_params(scenario, method, file_values, overrides or {})
    return RunConfig(method=method.name, scenario=scenario.name, backbone=backbone, pretrained=pretrained,
                     seed=seed, device=device, out=out, params=MappingProxyType(params))


def same_config(a: Mapping, b: Mapping) -> list[str]:
    """Keys whose values differ between two config dicts (JSON-normalised)."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    keys = sorted(set(a) | set(b))
    diff = [k for k in keys if k not in ("out", "params") and a.get(k) != b.get(k)]
    pa, pb = a.get("params", {}), b.get("params", {})
    diff += [f"params.{k}" for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    return diff
