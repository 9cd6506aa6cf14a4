"""Realised performance against the test metrics, the labels join, and the
confidence-based estimate (CBPE) before labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.errors import UsageError
from mlops.monitoring.performance import (
    draw_labels,
    estimate_performance,
    join_labels,
    realised_performance,
)
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import get_task
from tests.unit.monitoring_cases import TASK_NAMES, case

CLASSIFICATION = ("binary", "multiclass")
# Allowed degradations a project might set (monitor params), per task's metrics.
TOLERANCE = {
    "roc_auc": 0.05,
    "accuracy": 0.05,
    "log_loss": 0.1,
    "roc_auc_ovr": 0.05,
    "rmse": 5.0,
    "mae": 5.0,
    "r2": 0.1,
}
ROWS = 2000
WINDOWS = 20


@pytest.mark.parametrize("task", TASK_NAMES)
def test_logged_columns_give_the_prediction_back(task: str) -> None:
    c = case(task)
    back = c.task.from_columns({str(k): v.to_numpy() for k, v in c.outputs.items()})
    assert np.array_equal(back.label, c.prediction.label)
    assert back.classes == c.prediction.classes
    if c.prediction.proba is None:
        assert back.proba is None
    else:
        np.testing.assert_allclose(back.proba, c.prediction.proba)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_undrifted_labelled_window_meets_the_test_metrics(task: str) -> None:
    c = case(task)
    _, outputs, actual = c.window(ROWS, 1)
    found = realised_performance(
        c.task, c.task.from_columns(outputs), actual, c.reference["metrics"], TOLERANCE
    )
    assert found["rows"] == ROWS
    assert not any(m["breach"] for m in found["metrics"].values()), found


@pytest.mark.parametrize("task", TASK_NAMES)
def test_concept_drift_drops_realised_performance_but_not_the_estimate(task: str) -> None:
    c = case(task)
    _, outputs, actual = c.window(ROWS, 2)
    rng = np.random.default_rng(3)
    flipped = rng.random(ROWS) < 0.3  # P(y | x) changes for 30 % of the rows
    if c.task.is_classification:
        changed = np.where(flipped, rng.permutation(actual), actual)
    else:
        changed = np.where(flipped, actual + 2 * actual.std(), actual)
    prediction = c.task.from_columns(outputs)
    headline = c.task.default_metric if task != "multiclass" else "accuracy"
    realised = realised_performance(
        c.task, prediction, changed, c.reference["metrics"], TOLERANCE, names=[headline]
    )
    assert realised["metrics"][headline]["breach"], realised
    estimated = estimate_performance(
        c.task, prediction, c.reference["metrics"], TOLERANCE, seed=0, names=[headline]
    )
    if c.task.is_classification:
        assert estimated is not None
        assert estimated["metrics"][headline]["breach"] is False  # only labels reveal it
    else:
        assert estimated is None  # no estimate for regression


@pytest.mark.parametrize("task", CLASSIFICATION)
def test_cbpe_estimate_is_close_to_the_realised_metric(task: str) -> None:
    c = case(task)
    errors = []
    for seed in range(WINDOWS):
        _, outputs, actual = c.window(500, seed)
        prediction = c.task.from_columns(outputs)
        names = ["accuracy", "roc_auc" if task == "binary" else "roc_auc_ovr"]
        estimated = estimate_performance(
            c.task, prediction, {}, TOLERANCE, seed=seed, names=names, draws=50
        )
        realised = realised_performance(c.task, prediction, actual, {}, TOLERANCE, names=names)
        assert estimated is not None
        for name in names:
            guess, truth = estimated["metrics"][name], realised["metrics"][name]["value"]
            errors.append(abs(guess["value"] - truth))
    # Logistic regression's probabilities are close to calibrated on these sets (a
    # little underconfident on wine, which it separates perfectly: the realised
    # accuracy is 1 where the probabilities promise 0.98).
    assert np.mean(errors) <= 0.03, np.mean(errors)


def test_cbpe_range_covers_the_realised_accuracy_when_calibrated() -> None:
    """With probabilities that are calibrated by construction (labels drawn from them),
    the 90 % range of the draws holds the realised accuracy about 90 % of the time."""
    task = get_task("binary")
    rng = np.random.default_rng(0)
    covered, errors = [], []
    for seed in range(100):
        positive = rng.beta(2, 2, 500)
        actual = (rng.random(500) < positive).astype("int64")
        prediction = Prediction(
            (positive >= 0.5).astype("int64"), np.column_stack([1 - positive, positive]), (0, 1)
        )
        estimate = estimate_performance(
            task, prediction, {}, TOLERANCE, seed=seed, names=["accuracy"], draws=100
        )
        assert estimate is not None
        guess = estimate["metrics"]["accuracy"]
        truth = float(np.mean(actual == prediction.label))
        covered.append(guess["low"] <= truth <= guess["high"])
        # NannyML's closed form for accuracy: the mean probability of the predicted class.
        errors.append(abs(guess["value"] - np.mean(np.maximum(positive, 1 - positive))))
    assert 0.8 <= np.mean(covered) <= 0.98
    assert max(errors) < 0.01


def test_draws_follow_the_probabilities() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]])
    drawn = draw_labels(
        Prediction(np.array(["a", "c"]), proba, ("a", "b", "c")), 20_000, np.random.default_rng(0)
    )
    assert drawn.shape == (20_000, 2)
    shares = pd.Series(drawn[:, 0]).value_counts(normalize=True)
    np.testing.assert_allclose(shares[["a", "b", "c"]], [0.7, 0.2, 0.1], atol=0.01)
    assert set(drawn[:, 1]) == {"c"}


def test_labels_join_by_request_id() -> None:
    logged = pd.Series(["r1", "r2", "r3", "r4"])
    labels = pd.DataFrame({"request_id": ["r4", "r2"], "actual": [1, 0]})
    positions, actual = join_labels(logged, labels)
    assert positions.tolist() == [1, 3]
    assert actual.tolist() == [0, 1]


def test_unknown_and_duplicate_label_ids_are_one_line_errors() -> None:
    logged = pd.Series(["r1", "r2"])
    with pytest.raises(UsageError, match=r"1 request id\(s\) not in the prediction log: \['r9'\]"):
        join_labels(logged, pd.DataFrame({"request_id": ["r1", "r9"], "actual": [1, 0]}))
    with pytest.raises(UsageError, match=r"given more than once: \['r1'\]"):
        join_labels(logged, pd.DataFrame({"request_id": ["r1", "r1"], "actual": [1, 0]}))
    with pytest.raises(UsageError, match="missing column"):
        join_labels(logged, pd.DataFrame({"id": ["r1"], "actual": [1]}))
    # ids logged outside the window are known when the caller says so
    positions, _ = join_labels(
        logged, pd.DataFrame({"request_id": ["r7"], "actual": [1]}), known=["r1", "r2", "r7"]
    )
    assert positions.size == 0


def test_a_metric_undefined_on_the_window_is_not_judged() -> None:
    c = case("binary")
    prediction = c.task.from_columns(c.outputs.iloc[:50])
    found = realised_performance(
        c.task,
        prediction,
        np.ones(50, dtype="int64"),
        c.reference["metrics"],
        TOLERANCE,
        names=["roc_auc"],
    )
    assert found["metrics"]["roc_auc"] == {
        "value": None,
        "reference": c.reference["metrics"]["roc_auc"],
        "tolerance": 0.05,
        "breach": None,
        "why": "undefined on these rows",
    }


def test_a_metric_without_an_allowance_is_reported_not_judged() -> None:
    c = case("regression")
    _, outputs, actual = c.window(ROWS, 4)
    found = realised_performance(
        c.task, c.task.from_columns(outputs), actual + 100.0, c.reference["metrics"], {"rmse": 5.0}
    )
    assert found["metrics"]["rmse"]["breach"] is True
    assert found["metrics"]["mae"]["breach"] is None
    assert found["metrics"]["mae"]["tolerance"] is None
