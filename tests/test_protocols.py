"""Protocol objects: evaluated tasks, evaluation class sets and metrics, on hand-built tasks and matrices."""

import pytest

from cl_bench import protocols
from cl_bench.errors import UserError
from cl_bench.protocols import CLASS_INCREMENTAL, TASK_INCREMENTAL
from cl_bench.results import compute_metrics
from cl_bench.scenario import BuiltScenario, Scenario, Task


def _tasks():
    """Three tasks with 2, 3 and 1 classes; prompts name task and class."""
    sizes = {"a": 2, "b": 3, "c": 1}
    return [Task(name, [], [], [[f"{name}{i}"] for i in range(n)], [[f"{name}{i}"] for i in range(n)])
            for name, n in sizes.items()]


def test_ids_are_stable_and_looked_up_once():
    assert protocols.get("mtil") is TASK_INCREMENTAL and protocols.get("cil") is CLASS_INCREMENTAL
    assert protocols.get(CLASS_INCREMENTAL) is CLASS_INCREMENTAL
    assert BuiltScenario(_tasks(), "cil").protocol is CLASS_INCREMENTAL
    assert BuiltScenario(_tasks(), TASK_INCREMENTAL).protocol is TASK_INCREMENTAL
    s = Scenario(name="x", description="", protocol="mtil", version="1", profile="micro", defaults={},
                 build=lambda p, b, s: None)
    assert s.protocol is TASK_INCREMENTAL


@pytest.mark.parametrize("bad", ["MTIL", "x-tail", None, 3])
def test_unknown_protocol_is_a_one_line_error(bad):
    with pytest.raises(UserError, match=r"unknown protocol .*; use one of cil, mtil, xtail"):
        BuiltScenario(_tasks(), bad)
    with pytest.raises(UserError, match="unknown protocol"):
        Scenario(name="x", description="", protocol=bad, version="1", profile="micro", defaults={},
                 build=lambda p, b, s: None)


def test_task_incremental_evaluates_every_task_against_its_own_classes():
    built = BuiltScenario(_tasks(), "mtil")
    for after in (None, 0, 1, 2):
        assert built.evaluated(after) == [0, 1, 2]
        assert built.eval_prompts(1, after) == [["b0"], ["b1"], ["b2"]]
        assert built.eval_parts(1, after) == [("b", 3)]
        assert built.eval_key(1, after) == "b"  # the training key: one text-feature cache entry per task
    assert TASK_INCREMENTAL.fixed_class_sets


def test_class_incremental_evaluates_seen_steps_against_all_seen_classes():
    built = BuiltScenario(_tasks(), "cil")
    assert built.evaluated(None) == [0, 1, 2]  # zero-shot: every test set, all classes
    assert built.evaluated(0) == [0] and built.evaluated(1) == [0, 1] and built.evaluated(2) == [0, 1, 2]
    assert built.eval_prompts(0, 1) == [["a0"], ["a1"], ["b0"], ["b1"], ["b2"]]
    assert built.eval_parts(0, 1) == [("a", 2), ("b", 3)]
    assert built.eval_parts(2, None) == built.eval_parts(0, 2) == [("a", 2), ("b", 3), ("c", 1)]
    assert [built.eval_key(0, t) for t in (0, 1, 2, None)] == ["cil-seen:0", "cil-seen:1", "cil-seen:2",
                                                                "cil-seen:2"]
    # The class set of a task changes from step to step: a frozen model's rows are not its zero-shot row.
    assert not CLASS_INCREMENTAL.fixed_class_sets


def test_task_incremental_metrics_by_hand():
    R = [[50, 20, 30], [40, 60, 10], [30, 50, 90]]
    m = TASK_INCREMENTAL.metrics(R, [10, 10, 10])
    # Transfer: task 1 mean(R[0][1]) = 20, task 2 mean(30, 10) = 20; Avg.: column means; Last: the last row.
    assert m["transfer"]["per_task"] == [None, 20, 20] and m["transfer"]["mean"] == 20
    assert m["avg"]["per_task"] == pytest.approx([40, 130 / 3, 130 / 3])
    assert m["last"]["per_task"] == [30, 50, 90] and m["last"]["mean"] == pytest.approx(170 / 3)
    assert [spec.values(m) for spec in TASK_INCREMENTAL.tables][2] == [30, 50, 90]
    assert [spec.summary_values(m) for spec in TASK_INCREMENTAL.tables][0] == [20]


def test_class_incremental_metrics_by_hand():
    R = [[80, None, None], [60, 90, None], [40, 70, 100]]
    m = CLASS_INCREMENTAL.metrics(R, [100, 300, 100])
    # A_0 = 80; A_1 = (60*100 + 90*300) / 400 = 82.5; A_2 = (4000 + 21000 + 10000) / 500 = 70.
    assert m["steps"] == pytest.approx([80, 82.5, 70])
    assert m["avg"] == pytest.approx((80 + 82.5 + 70) / 3) and m["last"] == pytest.approx(70)
    [spec] = CLASS_INCREMENTAL.tables
    assert spec.values(m) == m["steps"] and spec.summary_values(m) == [m["avg"], m["last"]]
    assert CLASS_INCREMENTAL.key_params == ("steps",)


def test_results_metrics_follow_the_recorded_protocol():
    R = [[80, None], [60, 90]]
    res = {"protocol": "cil", "matrix": R, "tasks": ["s0", "s1"], "test_sizes": [1, 3]}
    assert compute_metrics(res)["last"] == pytest.approx((60 + 270) / 4)
    assert compute_metrics({**res, "matrix": R[:1]}) is None  # incomplete
