"""The papers' reported numbers (docs/protocols.md P14), stored as data.

Leaderboards put these rows beside our own results. They are transcribed once from docs/protocols.md P14, never
parsed from it at run time, so a leaderboard does not depend on a document's formatting.

Every row records the protocol it was measured under (scenario, backbone, pretrained tag, prompt
convention, and for CIL the number of steps), so a leaderboard shows a delta against it only where our
runs used the same protocol. Values are percentages; per-task tuples are in the scenario's training
order, and means are the values the source printed (computed on unrounded per-task values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ZSCL_NB = "ZSCL-nb"
DPW = "DPW"
MOE_LOGS = "MoE-logs"


@dataclass(frozen=True)
class Source:
    tag: str
    citation: str
    url: str | None  # None where docs/protocols.md P14 records no address
    note: str = ""


SOURCES: Mapping[str, Source] = MappingProxyType({
    ZSCL_NB: Source(
        ZSCL_NB,
        "ZSCL authors' results notebook (Thunderbeee/ZSCL mtil/results.ipynb), recomputed from its raw "
        "accuracy matrices with the notebook's own formula",
        "https://github.com/Thunderbeee/ZSCL/blob/main/mtil/results.ipynb",
        "template-ensemble prompts at test time",
    ),
    DPW: Source(
        DPW,
        '"Enhancing Continual Learning of Vision-Language Models via Dynamic Prefix Weighting", '
        "Table 1, E.1/C.1 (few-shot), E.3 (Order-I), E.4 (Order-II)",
        None,
        "DPW follows ZSCL's evaluation protocol (template ensembles at test time), so its rows are "
        "stored with prompts 'ensemble'; its ZSCL rows match ZSCL-nb cell for cell",
    ),
    MOE_LOGS: Source(
        MOE_LOGS,
        "author-logged CIL runs in JiazuoYu/MoE-Adapters4CL (cil/experiments/class/*/metrics.json)",
        "https://github.com/JiazuoYu/MoE-Adapters4CL",
        "one prompt template ('a bad photo of a {}.', from the repo's cil configs); may differ slightly "
        "from the MoE-Adapters paper's table",
    ),
})


@dataclass(frozen=True)
class ReferenceRow:
    """One method's reported numbers in one scenario (and CIL setting).

    ``per_task[metric]`` holds per-task values (None where not reported) aligned with ``tasks`` (dataset
    names) or, when ``tasks`` is None, by position (CIL steps). ``means[metric]`` is the printed mean.
    ``params`` are the run config params that define the setting (CIL: ``steps``).
    ``method`` is the cl-bench method name of the same method, or None (a variant we do not implement).
    """

    scenario: str
    label: str
    method: str | None
    source: str
    per_task: Mapping[str, tuple[float | None, ...]]
    means: Mapping[str, float]
    tasks: tuple[str, ...] | None = None
    params: Mapping[str, object] = field(default_factory=dict)
    backbone: str = "ViT-B-16"
    pretrained: str = "openai"
    prompts: str = "ensemble"
    extra: Mapping[str, float] = field(default_factory=dict)
    note: str = ""


ORDER_I = ("Aircraft", "Caltech101", "CIFAR100", "DTD", "EuroSAT", "Flowers", "Food", "MNIST", "OxfordPet",
           "StanfordCars", "SUN397")
ORDER_II = ("StanfordCars", "Food", "MNIST", "OxfordPet", "Flowers", "SUN397", "Aircraft", "Caltech101",
            "DTD", "EuroSAT", "CIFAR100")

# Other spellings of the MTIL dataset names, so reference cells line up with whatever names a scenario uses.
_DATASET_ALIASES = {
    "cars": "stanfordcars", "fgvcaircraft": "aircraft", "flowers102": "flowers", "food101": "food",
    "oxfordiiitpet": "oxfordpet", "pet": "oxfordpet", "pets": "oxfordpet", "caltech": "caltech101",
    "sun": "sun397",
}


def dataset_key(name: str) -> str:
    """Case- and punctuation-insensitive dataset name; common aliases folded ("Cars" = "StanfordCars")."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _DATASET_ALIASES.get(key, key)


# MTIL per-dataset tables (docs/protocols.md P14): (label, cl-bench method, source, {metric: (cells, mean)}).
# Transfer is undefined for the first task (None).
_ORDER_I_ROWS = (
    ("Zero-shot (template ensemble)", "zeroshot", ZSCL_NB, {
        "transfer": ((None, 88.4, 68.2, 44.6, 54.9, 71.0, 88.5, 59.4, 89.0, 64.7, 65.2), 69.4),
        "avg": ((24.3, 88.4, 68.2, 44.6, 54.9, 71.0, 88.5, 59.4, 89.0, 64.7, 65.2), 65.3),
        "last": ((24.3, 88.4, 68.2, 44.6, 54.9, 71.0, 88.5, 59.4, 89.0, 64.7, 65.2), 65.3),
    }),
    ("Continual-FT", "finetune", ZSCL_NB, {
        "transfer": ((None, 67.1, 46.0, 32.1, 35.6, 35.0, 57.7, 44.1, 60.8, 20.5, 46.6), 44.6),
        "avg": ((25.5, 81.5, 59.1, 53.2, 64.7, 51.8, 63.2, 64.3, 69.7, 31.8, 49.7), 55.9),
        "last": ((31.0, 89.3, 65.8, 67.3, 88.9, 71.1, 85.6, 99.6, 92.9, 77.3, 81.1), 77.3),
    }),
    ("LwF", "lwf", ZSCL_NB, {
        "transfer": ((None, 74.5, 56.9, 39.1, 51.1, 52.6, 72.8, 60.6, 75.1, 30.3, 55.9), 56.9),
        "avg": ((36.3, 86.9, 72.0, 59.0, 73.7, 60.0, 73.6, 74.8, 80.0, 37.3, 58.1), 64.7),
        "last": ((26.3, 87.5, 71.9, 66.6, 79.9, 66.9, 83.8, 99.6, 92.1, 66.1, 80.4), 74.6),
    }),
    ("iCaRL", "icarl", ZSCL_NB, {
        "transfer": ((None, 56.6, 44.6, 32.7, 39.3, 46.6, 68.0, 46.0, 77.4, 31.9, 60.5), 50.4),
        "avg": ((35.5, 89.2, 72.2, 60.6, 68.8, 70.0, 78.2, 62.3, 81.8, 41.2, 62.5), 65.7),
        "last": ((35.8, 93.0, 77.0, 70.2, 83.3, 88.5, 90.4, 86.7, 93.2, 81.2, 81.9), 80.1),
    }),
    ("LwF-VR", "lwf-vr", ZSCL_NB, {
        "transfer": ((None, 77.1, 61.0, 40.5, 45.3, 54.4, 74.6, 47.9, 76.7, 36.3, 58.6), 57.2),
        "avg": ((29.6, 87.7, 74.4, 59.5, 72.4, 63.6, 77.0, 66.7, 81.2, 43.7, 60.7), 65.1),
        "last": ((20.5, 89.8, 72.3, 67.6, 85.5, 73.8, 85.7, 99.6, 93.1, 73.3, 80.9), 76.6),
    }),
    ("WiSE-FT", "wise-ft", ZSCL_NB, {
        "transfer": ((None, 73.5, 55.6, 35.6, 41.5, 47.0, 68.3, 53.9, 69.3, 26.8, 51.9), 52.3),
        "avg": ((26.7, 86.5, 64.3, 57.1, 65.7, 58.7, 71.1, 70.5, 75.8, 36.9, 54.6), 60.7),
        "last": ((27.2, 90.8, 68.0, 68.9, 86.9, 74.0, 87.6, 99.6, 92.6, 77.8, 81.3), 77.7),
    }),
    ("ZSCL*", None, ZSCL_NB, {
        "transfer": ((None, 78.3, 64.0, 42.9, 45.2, 63.5, 84.2, 56.1, 78.9, 44.1, 64.3), 62.2),
        "avg": ((50.7, 90.9, 79.8, 63.8, 76.6, 77.3, 87.0, 71.9, 83.0, 52.0, 65.9), 72.6),
        "last": ((46.0, 92.3, 81.2, 72.4, 93.0, 92.1, 90.8, 99.6, 93.3, 86.6, 81.7), 84.5),
    }),
    ("ZSCL", "zscl", ZSCL_NB, {
        "transfer": ((None, 86.0, 67.4, 45.4, 50.4, 69.1, 87.6, 61.8, 86.8, 60.1, 66.8), 68.1),
        "avg": ((45.1, 92.0, 80.1, 64.3, 79.5, 81.6, 89.6, 75.2, 88.9, 64.7, 68.0), 75.4),
        "last": ((40.6, 92.2, 81.3, 70.5, 94.8, 90.5, 91.9, 98.7, 93.9, 85.3, 80.2), 83.6),
    }),
    ("DIKI", "diki", DPW, {
        "transfer": ((None, 92.9, 69.0, 43.2, 48.2, 67.4, 85.2, 63.0, 87.9, 63.8, 66.2), 68.7),
        "avg": ((45.1, 95.5, 83.1, 64.8, 79.9, 83.5, 87.0, 76.2, 89.6, 67.0, 67.1), 76.3),
        "last": ((45.2, 95.7, 86.3, 72.9, 98.0, 97.0, 89.2, 99.4, 94.2, 81.6, 76.6), 85.1),
    }),
    ("MoE-Adapters", "moe-adapters", DPW, {
        "transfer": ((None, 87.9, 68.2, 44.4, 49.9, 70.7, 88.7, 59.7, 89.1, 64.5, 65.5), 68.9),
        "avg": ((50.2, 91.9, 83.1, 69.4, 78.9, 84.0, 89.1, 73.7, 89.3, 67.7, 66.9), 76.7),
        "last": ((49.8, 92.2, 86.1, 78.1, 95.7, 94.3, 89.5, 98.1, 89.9, 81.6, 80.0), 85.0),
    }),
    ("GIFT", "gift", DPW, {
        "transfer": ((None, 88.5, 69.8, 46.0, 49.4, 68.5, 87.1, 69.9, 88.9, 57.7, 67.7), 69.3),
        "avg": ((51.9, 93.9, 81.4, 67.7, 80.3, 82.8, 89.3, 80.6, 90.3, 63.1, 68.9), 77.3),
        "last": ((47.9, 95.6, 82.8, 75.1, 97.3, 94.2, 91.7, 99.2, 94.2, 87.0, 80.9), 86.0),
    }),
    ("DPW† (4.6M)", None, DPW, {
        "transfer": ((None, 92.9, 68.9, 45.2, 53.7, 71.1, 86.4, 60.4, 89.7, 66.0, 65.8), 70.0),
        "avg": ((57.8, 96.2, 83.9, 69.2, 82.1, 85.8, 87.8, 74.6, 91.2, 69.6, 67.0), 78.6),
        "last": ((57.8, 96.5, 87.3, 78.2, 98.3, 98.1, 89.5, 99.5, 94.9, 85.6, 78.1), 87.6),
    }),
    ("DPW (30.8M)", "dpw", DPW, {
        "transfer": ((None, 92.9, 69.0, 45.3, 54.2, 71.1, 86.2, 63.8, 89.3, 65.7, 66.5), 70.4),
        "avg": ((60.4, 96.2, 84.5, 70.8, 82.4, 85.8, 87.7, 76.8, 90.9, 69.4, 67.6), 79.3),
        "last": ((60.5, 96.6, 87.9, 80.4, 98.5, 98.1, 89.4, 99.6, 95.1, 86.3, 78.8), 88.3),
    }),
)

_ORDER_II_ROWS = (
    ("Zero-shot (template ensemble)", "zeroshot", ZSCL_NB, {
        "transfer": ((None, 88.5, 59.4, 89.0, 71.0, 65.2, 24.3, 88.4, 44.6, 54.9, 68.2), 65.4),
        "avg": ((64.7, 88.5, 59.4, 89.0, 71.0, 65.2, 24.3, 88.4, 44.6, 54.9, 68.2), 65.3),
        "last": ((64.7, 88.5, 59.4, 89.0, 71.0, 65.2, 24.3, 88.4, 44.6, 54.9, 68.2), 65.3),
    }),
    ("Continual-FT", "finetune", ZSCL_NB, {
        "transfer": ((None, 85.9, 59.6, 57.9, 40.0, 46.7, 11.1, 70.0, 30.5, 26.6, 37.7), 46.6),
        "avg": ((42.1, 70.5, 92.2, 80.1, 54.5, 59.1, 19.8, 78.3, 41.0, 38.1, 42.3), 56.2),
        "last": ((24.0, 67.3, 99.1, 87.4, 44.3, 67.0, 29.5, 92.3, 61.3, 81.0, 88.1), 67.4),
    }),
    ("LwF", "lwf", ZSCL_NB, {
        "transfer": ((None, 87.8, 58.5, 71.9, 46.6, 57.3, 12.8, 81.4, 34.5, 34.5, 46.8), 53.2),
        "avg": ((49.0, 77.0, 92.1, 85.9, 66.5, 67.2, 20.9, 84.7, 44.6, 45.5, 50.5), 62.2),
        "last": ((34.6, 69.6, 99.3, 88.7, 61.1, 72.5, 32.5, 88.1, 65.6, 90.9, 87.9), 71.9),
    }),
    ("iCaRL", "icarl", ZSCL_NB, {
        "transfer": ((None, 86.1, 51.8, 67.6, 50.4, 57.9, 11.0, 72.3, 31.2, 32.7, 48.1), 50.9),
        "avg": ((52.0, 75.9, 77.4, 74.6, 58.4, 59.3, 11.7, 79.6, 42.1, 43.2, 51.7), 56.9),
        "last": ((46.0, 81.5, 91.3, 82.8, 66.5, 72.2, 16.3, 91.6, 68.1, 83.2, 87.8), 71.6),
    }),
    ("LwF-VR", "lwf-vr", ZSCL_NB, {
        "transfer": ((None, 88.2, 57.0, 71.4, 50.0, 58.0, 13.0, 82.0, 34.4, 29.3, 47.6), 53.1),
        "avg": ((44.9, 75.8, 91.8, 85.3, 63.5, 67.6, 16.9, 84.9, 44.0, 40.6, 51.3), 60.6),
        "last": ((27.4, 61.2, 99.4, 86.3, 60.6, 70.7, 23.4, 88.0, 61.3, 84.3, 88.1), 68.3),
    }),
    ("WiSE-FT", "wise-ft", ZSCL_NB, {
        "transfer": ((None, 87.2, 57.6, 67.0, 45.0, 54.0, 12.9, 78.6, 35.5, 28.4, 44.3), 51.0),
        "avg": ((52.6, 79.3, 91.9, 83.9, 63.4, 65.2, 23.3, 83.7, 45.4, 40.0, 48.2), 61.5),
        "last": ((35.6, 76.9, 99.5, 89.1, 62.1, 71.8, 27.8, 90.8, 67.0, 85.6, 87.6), 72.2),
    }),
    ("ZSCL*", None, ZSCL_NB, {
        "transfer": ((None, 88.8, 56.7, 75.5, 58.8, 62.5, 16.1, 87.0, 42.0, 44.0, 66.5), 59.8),
        "avg": ((72.0, 89.8, 91.7, 87.9, 78.8, 71.5, 35.1, 89.0, 51.4, 53.9, 68.5), 71.8),
        "last": ((63.5, 89.6, 99.2, 92.4, 84.5, 78.3, 55.2, 92.4, 74.6, 97.4, 88.6), 83.3),
    }),
    ("ZSCL", "zscl", ZSCL_NB, {
        "transfer": ((None, 88.3, 57.5, 84.7, 68.1, 64.8, 21.1, 88.2, 45.3, 55.2, 68.2), 64.2),
        "avg": ((81.7, 91.3, 91.1, 91.0, 82.9, 72.5, 33.6, 89.7, 53.3, 62.8, 69.9), 74.5),
        "last": ((78.2, 91.1, 97.6, 92.5, 87.4, 78.2, 45.0, 92.3, 72.7, 96.2, 86.3), 83.4),
    }),
    ("DIKI", "diki", DPW, {
        "transfer": ((None, 85.8, 59.8, 89.1, 71.8, 62.6, 24.3, 93.3, 42.7, 46.8, 67.8), 64.4),
        "avg": ((81.9, 88.9, 92.1, 92.8, 87.7, 70.3, 34.3, 94.2, 51.5, 56.1, 69.5), 74.5),
        "last": ((81.9, 89.2, 99.4, 94.3, 96.8, 76.7, 46.3, 95.9, 74.8, 98.3, 86.6), 85.5),
    }),
    ("MoE-Adapters", "moe-adapters", DPW, {
        "transfer": ((None, 88.8, 59.5, 89.1, 69.9, 64.4, 18.1, 86.9, 43.7, 54.6, 68.2), 64.3),
        "avg": ((84.9, 89.9, 89.3, 91.4, 86.2, 72.2, 33.4, 89.4, 53.3, 61.4, 69.9), 74.7),
        "last": ((84.1, 88.5, 94.0, 91.8, 94.1, 77.8, 50.4, 93.3, 77.1, 87.7, 86.6), 84.1),
    }),
    ("GIFT", "gift", DPW, {
        "transfer": ((None, 88.3, 63.4, 88.1, 70.8, 67.7, 22.8, 90.4, 46.7, 51.8, 68.8), 65.9),
        "avg": ((83.2, 90.8, 92.6, 92.8, 85.8, 74.1, 36.0, 92.1, 54.7, 60.0, 70.4), 75.7),
        "last": ((81.0, 90.2, 98.6, 94.0, 91.5, 78.6, 51.7, 94.6, 75.6, 95.4, 86.6), 85.3),
    }),
    ("DPW† (4.6M)", None, DPW, {
        "transfer": ((None, 86.9, 61.6, 89.3, 71.3, 63.2, 24.3, 93.3, 44.8, 50.4, 68.6), 65.3),
        "avg": ((85.7, 89.1, 92.4, 93.2, 88.4, 71.3, 39.1, 94.5, 53.2, 59.1, 70.3), 76.0),
        "last": ((85.7, 89.4, 99.5, 94.7, 98.1, 78.1, 56.9, 96.6, 78.4, 98.4, 87.3), 87.6),
    }),
    ("DPW (30.8M)", "dpw", DPW, {
        "transfer": ((None, 85.9, 63.3, 89.4, 72.2, 64.2, 24.6, 94.0, 44.6, 49.4, 69.1), 65.7),
        "avg": ((86.6, 88.9, 92.8, 93.6, 88.5, 71.5, 40.4, 94.9, 54.2, 58.3, 70.9), 76.4),
        "last": ((86.6, 89.2, 99.6, 95.1, 97.9, 78.4, 59.4, 96.4, 79.8, 98.4, 87.9), 88.1),
    }),
)

# DPW Table E.1 / C.1, 16-shot MTIL-FS, Order-I. DPW re-ran DIKI and MoE-Adapters in its own setting.
_FEWSHOT_ROWS = (
    ("DIKI (DPW re-run)", "diki", DPW, {
        "transfer": ((None, 92.7, 68.6, 44.1, 47.8, 69.9, 86.1, 58.4, 89.0, 65.1, 65.2), 68.7),
        "avg": ((39.7, 95.6, 76.7, 61.4, 61.2, 83.3, 86.3, 69.3, 90.2, 67.6, 66.1), 72.5),
        "last": ((39.6, 95.8, 78.5, 68.0, 67.0, 94.4, 86.4, 88.3, 93.5, 78.6, 74.3), 78.6),
    }),
    ("MoE-Adapters (DPW re-run)", "moe-adapters", DPW, {
        "transfer": ((None, 88.4, 68.2, 42.9, 53.5, 70.1, 88.5, 63.3, 89.0, 64.7, 65.1), 69.3),
        "avg": ((43.3, 92.1, 77.2, 66.7, 80.0, 84.8, 88.3, 74.4, 89.0, 67.1, 65.9), 75.3),
        "last": ((43.3, 92.6, 79.2, 75.6, 95.1, 97.1, 88.1, 93.8, 89.1, 78.0, 73.7), 82.3),
    }),
    ("DPW", "dpw", DPW, {
        "transfer": ((None, 92.9, 68.9, 45.2, 53.7, 71.1, 86.4, 60.4, 89.7, 66.0, 65.8), 69.6),
        "avg": ((51.3, 95.7, 77.5, 65.9, 74.1, 85.3, 86.7, 71.2, 91.0, 68.8, 67.1), 75.9),
        "last": ((51.4, 96.0, 79.4, 73.8, 90.2, 97.4, 87.0, 91.8, 93.9, 83.4, 76.6), 83.7),
    }),
)
_FEWSHOT_NOTES = {
    "DPW": "Transfer mean 69.6 as printed; its cells average to 70.0 and equal DPW†'s full-shot row, "
           "probably a copy error in DPW",
}

# MoE-logs CIL runs (docs/protocols.md P14): scenario, steps, repo config, first-step, Avg, Last, forgetting, bwt.
# TinyImageNet: 100 base classes, then `steps` increments, so steps + 1 evaluations.
_CIL_ROWS = (
    ("cil-cifar100", 10, "cifar100_10-10", 98.4, 85.21, 77.52, 11.79, -9.80),
    ("cil-cifar100", 20, "cifar100_5-5", 99.8, 83.72, 76.20, 10.12, -7.92),
    ("cil-cifar100", 50, "cifar100_2-2", 100.0, 83.77, 75.24, 11.00, -7.99),
    ("cil-tinyimagenet", 5, "tinyimagenet 100-20", 85.98, 81.12, 76.87, 6.09, -4.30),
    ("cil-tinyimagenet", 10, "tinyimagenet 100-10", 85.46, 80.23, 76.35, 4.69, -4.04),
    ("cil-tinyimagenet", 20, "tinyimagenet 100-5", 86.2, 79.96, 75.77, 5.69, -3.49),
)


def _mtil_rows(scenario: str, tasks: tuple[str, ...], table, notes: Mapping[str, str] | None = None):
    notes = notes or {}
    return tuple(
        ReferenceRow(
            scenario=scenario, label=label, method=method, source=source, tasks=tasks,
            per_task={m: cells for m, (cells, _) in metrics.items()},
            means={m: mean for m, (_, mean) in metrics.items()},
            note=notes.get(label, ""),
        )
        for label, method, source, metrics in table
    )


def _cil_rows():
    return tuple(
        ReferenceRow(
            scenario=scenario, label="MoE-Adapters", method="moe-adapters", source=MOE_LOGS,
            per_task={"accuracy": (first,)},  # only the first step's accuracy is recorded
            means={"avg": avg, "last": last}, params={"steps": steps}, prompts="single",
            extra={"forgetting": forgetting, "continuum_bwt": bwt}, note=f"repo config {config}",
        )
        for scenario, steps, config, first, avg, last, forgetting, bwt in _CIL_ROWS
    )


REFERENCE_ROWS: tuple[ReferenceRow, ...] = (
    _mtil_rows("mtil", ORDER_I, _ORDER_I_ROWS)
    + _mtil_rows("mtil-order2", ORDER_II, _ORDER_II_ROWS)
    + _mtil_rows("mtil-fewshot", ORDER_I, _FEWSHOT_ROWS, _FEWSHOT_NOTES)
    + _cil_rows()
)


def reference_rows(scenario: str) -> list[ReferenceRow]:
    """The reported rows for one scenario, in the order the sources print them."""
    return [row for row in REFERENCE_ROWS if row.scenario == scenario]
