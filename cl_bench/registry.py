"""Name -> Method / Scenario / backbone provider, discovered through entry points (groups ``cl_bench.methods``,
``cl_bench.scenarios`` and ``cl_bench.backbones``). Built-ins register the same way a third-party plugin
package does."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from .errors import UserError
from .method import CLMethod, is_method_class
from .scenario import Scenario

METHOD_GROUP = "cl_bench.methods"
SCENARIO_GROUP = "cl_bench.scenarios"
DATA_COMMAND_GROUP = "cl_bench.data_commands"
BACKBONE_GROUP = "cl_bench.backbones"


@cache
def _load(group: str) -> dict[str, tuple[object, str]]:
    """name -> (object, source distribution) for every entry point of a group."""
    found = {}
    for ep in entry_points(group=group):
        obj = ep.load()
        source = ep.dist.name if ep.dist is not None else "?"
        found[ep.name] = (obj, "built-in" if source == "cl-bench" else source)
    return found


def _aliases(methods: dict) -> dict[str, str]:
    """Method names may carry aliases (e.g. keeplora+ for keeplora-plus)."""
    return {alias: name for name, (m, _) in methods.items() for alias in getattr(m, "ALIASES", ())}


def methods() -> dict[str, tuple[type[CLMethod], str]]:
    return _load(METHOD_GROUP)


def scenarios() -> dict[str, tuple[Scenario, str]]:
    return _load(SCENARIO_GROUP)


def backbones() -> dict[str, tuple[object, str]]:
    """Providers of named backbones (cl_bench.backbone.BackboneProvider); open_clip names need none."""
    return _load(BACKBONE_GROUP)


def data_commands() -> list:
    """Modules adding ``cl-bench data`` subcommands: ``add_parsers(subparsers)`` and ``DATA_COMMANDS``
    (name -> function(args, console))."""
    return [obj for obj, _ in _load(DATA_COMMAND_GROUP).values()]


def get_method(name: str) -> type[CLMethod]:
    ms = methods()
    name = _aliases(ms).get(name, name)
    if name not in ms:
        raise UserError(f"unknown method {name!r}; valid methods: {', '.join(sorted(ms))}")
    obj, source = ms[name]
    if not is_method_class(obj):
        raise UserError(f"method plugin {name!r} from {source} is not a CLMethod subclass with a NAME; write it "
                        "as in docs/adding-a-method.md")
    return obj


def get_scenario(name: str) -> Scenario:
    ss = scenarios()
    if name not in ss:
        raise UserError(f"unknown scenario {name!r}; valid scenarios: {', '.join(sorted(ss))}")
    return ss[name][0]


def clear_cache() -> None:
    _load.cache_clear()
