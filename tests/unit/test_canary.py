"""The canary's checks: the same model passes; a model answering NaN, one disagreeing
with production, and a much slower one fail (each task)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.config import CanaryConfig
from mlops.release import canary
from mlops.tasks.task import Task, get_task

CONFIG = CanaryConfig(rows=500, min_agreement=0.8, latency_rows=10, max_latency_ratio=5.0)
TASKS = ["binary", "multiclass", "regression"]


def data(task: str, rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    signal = x["a"] + 0.5 * x["b"]
    if task == "binary":
        return x, (signal > 0).astype(int).to_numpy()
    if task == "multiclass":
        return x, np.asarray(
            pd.cut(signal, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]).astype(str)
        )
    return x, signal.to_numpy() * 10


def fitted(task: str) -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x, y = data(task)
    model = LinearRegression() if task == "regression" else LogisticRegression()
    return model.fit(x, y), x


SLOWER = 20  # the slow model predicts this many times per call, then sleeps 10 ms


class Broken:
    """Wraps a model: answers NaN, the opposite of it, or the same but slowly. Slowly is
    the real work repeated as well as a sleep, so the ratio to production stays far above
    the limit however loaded the machine is (load slows both models alike)."""

    def __init__(self, model: Any, how: str) -> None:
        self.model, self.how = model, how
        self.classes_ = getattr(model, "classes_", None)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        proba = self.model.predict_proba(x)
        if self.how == "nan":
            return np.full_like(proba, np.nan)
        if self.how == "slow":
            return self.slowly(self.model.predict_proba, x)
        return proba[:, ::-1]  # the least likely class becomes the most likely

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        value = self.model.predict(x)
        if self.how == "nan":
            return np.full_like(value, np.nan)
        if self.how == "slow":
            return self.slowly(self.model.predict, x)
        return -value

    @staticmethod
    def slowly(predict: Any, x: pd.DataFrame) -> np.ndarray:
        for _ in range(SLOWER - 1):
            predict(x)
        time.sleep(0.01)
        return np.asarray(predict(x))


def logged(task: Task, model: Any, x: pd.DataFrame) -> Any:
    """Production's answers as the prediction log holds them (its output columns)."""
    columns = task.columns(task.predict(model, x))
    return task.from_columns({name: pd.Series(values) for name, values in columns.items()})


def judge(task_name: str, candidate: Any) -> canary.CanaryResult:
    task = get_task(task_name)
    production, x = fitted(task_name)
    rows = x.iloc[:10]
    latency = canary.single_row_ms(task, 0.5, (candidate, rows), (production, rows))
    return canary.judge(
        task, task.predict(candidate, x), logged(task, production, x), latency, CONFIG
    )


@pytest.mark.parametrize("task", TASKS)
def test_the_production_model_itself_passes(task: str) -> None:
    model, _ = fitted(task)
    result = judge(task, model)
    assert result.passed, result.summary
    assert "agreement 1.00" in result.summary


@pytest.mark.parametrize("task", TASKS)
def test_a_model_answering_nan_fails(task: str) -> None:
    result = judge(task, Broken(fitted(task)[0], "nan"))
    assert not result.passed
    assert "NaN or infinity" in result.summary
    assert "\n" not in result.summary


@pytest.mark.parametrize("task", TASKS)
def test_a_model_disagreeing_with_production_fails(task: str) -> None:
    result = judge(task, Broken(fitted(task)[0], "flip"))
    assert not result.passed
    assert "agreement with production" in result.summary


@pytest.mark.parametrize("task", TASKS)
def test_a_much_slower_model_fails(task: str) -> None:
    result = judge(task, Broken(fitted(task)[0], "slow"))
    assert not result.passed
    assert "single-row latency" in result.summary


def test_regression_agreement_is_the_correlation_of_the_values() -> None:
    task = get_task("regression")
    base = np.linspace(0, 10, 50)
    same = canary.agreement(
        task, task.from_columns({"prediction": base}), task.from_columns({"prediction": base})
    )
    noisy = base + np.random.default_rng(0).normal(scale=5, size=50)
    weaker = canary.agreement(
        task, task.from_columns({"prediction": noisy}), task.from_columns({"prediction": base})
    )
    assert same == 1.0
    assert 0.3 < weaker < 0.95
