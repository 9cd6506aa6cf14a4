"""Numerical stability of the model's answers, for each task, and through the log."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlops.monitoring.logs import Window, read_window
from mlops.monitoring.stability import stability
from mlops.serving import service
from tests.unit.monitoring_cases import TASK_NAMES, case


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_models_own_answers_are_stable(task: str) -> None:
    c = case(task)
    found = stability(c.outputs, c.reference)
    assert found["stable"], found
    assert found["rows"] == len(c.outputs)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_nan_and_infinity_are_found(task: str) -> None:
    c = case(task)
    column = c.reference["prediction"]["drift_column"]
    name = column if c.outputs[column].dtype.kind == "f" else "probability_class_0"
    broken = c.outputs.copy()
    broken.loc[:2, name] = [np.nan, np.inf, -np.inf]
    found = stability(broken, c.reference)
    assert not found["stable"]
    assert found["columns"][name]["nan"] == 1
    assert found["columns"][name]["infinite"] == 2


def test_probabilities_outside_0_1_or_not_summing_to_1() -> None:
    c = case("multiclass")
    broken = c.outputs.copy()
    broken.loc[0, "probability_class_0"] = 1.2
    broken.loc[1, "probability_class_1"] += 0.3
    found = stability(broken, c.reference)
    assert found["columns"]["probability_class_0"]["outside_0_1"] == 1
    assert found["not_summing_to_1"] == 2
    assert not found["stable"]
    binary = case("binary")
    found = stability(binary.outputs.assign(probability=-0.1), binary.reference)
    assert found["columns"]["probability"]["outside_0_1"] == len(binary.outputs)
    assert "not_summing_to_1" not in found  # one column: the positive class only


def test_an_unknown_class_is_found() -> None:
    c = case("multiclass")
    broken = c.outputs.assign(prediction=c.outputs["prediction"].where(c.outputs.index > 4, "x"))
    found = stability(broken, c.reference)
    assert found["columns"]["prediction"]["unknown_class"] == 5
    assert not found["stable"]


def test_a_regression_value_far_outside_the_reference_range() -> None:
    c = case("regression")
    profile = c.reference["prediction"]["columns"]["prediction"]
    span = profile["max"] - profile["min"]
    values = [profile["max"] + 0.4 * span, profile["max"] + 0.6 * span, profile["min"] - span]
    broken = c.outputs.iloc[:3].assign(prediction=values)
    found = stability(broken, c.reference)
    assert found["columns"]["prediction"]["out_of_range"] == 2  # within half the range: fine
    assert stability(broken, c.reference, margin=2.0)["stable"]


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_model_answering_nan_is_seen_through_its_log(task: str) -> None:
    """``log_lines`` writes a NaN or infinite answer as null (JSON has neither); the log
    reader reads the line, not a corrupt one, and stability counts each as missing."""
    c = case(task)
    production = service.Production(None, "v1", "0" * 32, tuple(c.features.columns), c.task, 0.5)
    column = c.reference["prediction"]["drift_column"]
    answers = c.outputs.iloc[:3].assign(**{column: [np.nan, np.inf, -np.inf]}, imputed="")
    text = service.log_lines(
        c.features.iloc[:3], answers, production, "batch", datetime(2026, 3, 1, tzinfo=UTC)
    )
    window = read_window(
        [("log", text.encode())],
        list(c.reference["features"]),
        list(c.reference["prediction"]["columns"]),
        Window(),
    )
    assert window.counts.corrupt == 0
    found = stability(window.outputs, c.reference)
    assert found["columns"][column]["nan"] == 3
    pd.testing.assert_frame_equal(
        window.outputs.drop(columns=column), c.outputs.iloc[:3].drop(columns=column)
    )
