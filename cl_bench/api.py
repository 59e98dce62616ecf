"""What a plugin author imports: the method contract (``CLMethod``, cl_bench/method.py) and the scenario
contract (``Scenario``, cl_bench/scenario.py). Built-ins use exactly these and register through the same
entry points (docs/adding-a-method.md)."""

from .method import MICRO_BUDGET, RUN_DEFAULTS, CLMethod, RunContext
from .scenario import BuiltScenario, Scenario, Task

__all__ = ["MICRO_BUDGET", "RUN_DEFAULTS", "BuiltScenario", "CLMethod", "RunContext", "Scenario", "Task"]
