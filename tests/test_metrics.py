import pytest

from cl_bench.metrics import (
    backward_transfer,
    cil_metrics,
    cil_step_accuracies,
    continuum_bwt,
    continuum_forgetting,
    mtil_metrics,
)

# ZSCL's notebook zero-shot row (docs/protocols.md P9), Order I.
ZSCL_ZERO_SHOT = [24.3, 88.4, 68.2, 44.6, 54.9, 71.0, 88.5, 59.4, 89.0, 64.7, 65.2]


def test_zero_shot_vector_gives_published_means():
    R = [ZSCL_ZERO_SHOT] * 11
    m = mtil_metrics(R)
    assert round(m["transfer"]["mean"], 1) == 69.4
    assert round(m["avg"]["mean"], 1) == 65.3
    assert round(m["last"]["mean"], 1) == 65.3
    assert m["transfer"]["per_task"][0] is None
    assert m["bwt"] == 0


def test_mtil_metrics_hand_computed():
    R = [[50, 20, 30],
         [40, 80, 10],
         [30, 60, 90]]
    m = mtil_metrics(R)
    # Transfer: column i above the diagonal.
    assert m["transfer"]["per_task"] == [None, 20, (30 + 10) / 2]
    assert m["transfer"]["mean"] == pytest.approx((20 + 20) / 2)
    # Avg: the full column.
    assert m["avg"]["per_task"] == pytest.approx([40, 160 / 3, 130 / 3])
    assert m["avg"]["mean"] == pytest.approx((40 + 160 / 3 + 130 / 3) / 3)
    assert m["last"]["per_task"] == [30, 60, 90]
    assert m["last"]["mean"] == 60
    # BWT: (30-50 + 60-80) / 2
    assert m["bwt"] == -20


def test_mtil_rejects_non_square():
    with pytest.raises(ValueError):
        mtil_metrics([[1, 2]])


def test_cil_sample_weighted_step_accuracy():
    # docs/protocols.md P12: TinyImageNet 100-10 step 2 -> (83.6*5000 + 87.0*500)/5500 = 83.91
    R = [[90.0, None], [83.6, 87.0]]
    steps = cil_step_accuracies(R, [5000, 500])
    assert steps[0] == 90.0
    assert round(steps[1], 2) == 83.91
    m = cil_metrics(R, [5000, 500])
    assert m["last"] == steps[1]
    assert m["avg"] == pytest.approx((90.0 + steps[1]) / 2)


def test_continuum_forgetting_and_bwt_match_logged_example():
    # CIFAR100 10 steps, after step 3: forgetting (98.4-90.4)/2 = 4.0 and bwt (90.4-98.4)/3.
    R = [[98.4, None, None], [95.0, 97.0, None], [90.4, 93.0, 96.0]]
    assert continuum_forgetting(R) == pytest.approx(4.0)
    assert continuum_bwt(R) == pytest.approx(-8.0 / 3)
    assert backward_transfer(R) == pytest.approx(((90.4 - 98.4) + (93.0 - 97.0)) / 2)
