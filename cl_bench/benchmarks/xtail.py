"""X-TAIL scenarios (docs/protocols.md): the MTIL tasks under the task-agnostic protocol, where every test
image is classified over the classes of all tasks. Test labels are shifted by the number of classes of the
tasks before them, so they index that joint class list (in task order)."""

from __future__ import annotations

from dataclasses import replace

from torch.utils.data import Dataset

from cl_bench.protocols import TASK_AGNOSTIC
from cl_bench.scenario import BuiltScenario, Scenario

from . import micro, real_scenarios


class ShiftedLabels(Dataset):
    """A dataset whose labels are moved up by ``offset`` (its images are untouched)."""

    def __init__(self, base: Dataset, offset: int):
        self.base, self.offset = base, offset

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x, int(y) + self.offset

    @property
    def targets(self) -> list[int]:
        return [int(y) + self.offset for y in self.base.targets]


def task_agnostic(built: BuiltScenario) -> BuiltScenario:
    """The same tasks, evaluated task-agnostically: test labels index the classes of all tasks."""
    tasks, offset = [], 0
    for t in built.tasks:
        tasks.append(replace(t, test=ShiftedLabels(t.test, offset)))
        offset += len(t.eval_prompts)
    return BuiltScenario(tasks, TASK_AGNOSTIC, dict(built.info, label_space=f"all {offset} classes"))


class TaskAgnosticBuild:
    """A scenario builder whose tasks are evaluated task-agnostically."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, params, backbone, seed) -> BuiltScenario:
        return task_agnostic(self.inner(params, backbone, seed))


def _xtail(name: str, description: str, shots: int | None) -> Scenario:
    """X-TAIL on the MTIL readers: MTIL Order I without CIFAR100 (the reference's order)."""
    base = real_scenarios.MTIL_FEWSHOT if shots else real_scenarios.MTIL
    order = [d for d in base.defaults["tasks"] if d != "CIFAR100"]
    defaults = {**base.defaults, "tasks": order} | ({"shots": shots} if shots else {})
    return replace(base, name=name, description=description, protocol=TASK_AGNOSTIC, defaults=defaults,
                   version=f"{name}-{real_scenarios.DATA_VERSION}", build=TaskAgnosticBuild(base.build),
                   data=real_scenarios.OnDiskData(tuple(order)))


XTAIL_MICRO = Scenario(
    name="xtail-micro",
    description="mtil-micro's 5 domains, task-agnostic like X-TAIL: every image classified over the classes of "
                "all five domains; CPU-sized, no downloads",
    protocol=TASK_AGNOSTIC, version=f"xtail-micro-1/{micro.world.WORLD_VERSION}", profile="micro",
    defaults=dict(micro.MTIL_MICRO.defaults),
    build=TaskAgnosticBuild(micro.build_mtil), default_backbone="tiny", default_pretrained=None,
)
XTAIL = _xtail("xtail", "X-TAIL: MTIL's datasets without CIFAR100, every image classified over all ~1,100 classes "
               "with no task identity; full training sets; needs the datasets under --data-root", None)
XTAIL_FEWSHOT = _xtail("xtail-fewshot", "X-TAIL with 16 training images per class (RAIL's setting); needs the "
                       "datasets under --data-root", 16)
