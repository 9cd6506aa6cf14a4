"""One small fitted model per task, and its reference profile, for the monitoring tests.

Each data set (scikit-learn's breast cancer, wine, diabetes) stands for the
population: the reference is profiled on a bootstrap sample of it and every
production window is another bootstrap sample, so "no drift" holds exactly and a
test's false-alarm rate can be compared with its nominal level. The binary case has
a categorical feature too (``grade``: the quartile of ``mean radius``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops.monitoring.reference import build_reference
from mlops.tasks.metrics import Prediction, metrics_for
from mlops.tasks.task import Task, get_task

REFERENCE_ROWS = 5000
BUILT_AT = pd.Timestamp("2026-01-01T00:00:00Z").to_pydatetime()


@dataclass(frozen=True)
class Case:
    task: Task
    features: pd.DataFrame  # the population's features (the model's and ``grade``)
    target: np.ndarray
    outputs: pd.DataFrame  # the model's output columns on every population row
    prediction: Prediction
    reference: dict[str, Any]
    model: Any  # fitted on the numeric features

    def tilted(self) -> np.ndarray:
        """Row weights that shift the answers by a stated amount: a classifier's first
        class predicted twice as often; a score or value above its median twice as likely."""
        column = self.outputs[self.reference["prediction"]["drift_column"]]
        if column.dtype.kind == "f":
            heavy = np.where((column > column.median()).to_numpy(), 2.0, 1.0)
            return heavy / heavy.sum()
        first = (column == self.prediction.classes[0]).to_numpy()
        share = first.mean()
        return np.where(first, 2 * share / first.sum(), (1 - 2 * share) / (~first).sum())

    def answer(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's output columns for ``features`` (a window, shifted or not)."""
        numeric = features[list(self.model.feature_names_in_)]
        return pd.DataFrame(self.task.columns(self.task.predict(self.model, numeric)))

    def window(self, rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """A production window: (features, outputs, actual) of a bootstrap sample."""
        positions = np.random.default_rng(seed).integers(0, len(self.features), rows)
        return (
            self.features.iloc[positions].reset_index(drop=True),
            self.outputs.iloc[positions].reset_index(drop=True),
            self.target[positions],
        )


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray, Any]:
    if task == "binary":
        x, y = load_breast_cancer(return_X_y=True, as_frame=True)
        x = x.iloc[:, :8].rename(columns=lambda c: str(c).replace(" ", "_"))
        grade = pd.qcut(x["mean_radius"], 4, labels=list("abcd")).astype(str)
        return x.assign(grade=grade), y.to_numpy(), LogisticRegression(max_iter=2000)
    if task == "multiclass":
        bunch = load_wine(as_frame=True)
        target = np.asarray(bunch.target_names)[bunch.target]
        return bunch.data, target, LogisticRegression(max_iter=2000)
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return x, y.to_numpy(dtype=float), Ridge()


@cache
def case(task_name: str) -> Case:
    task = get_task(task_name)
    features, target, estimator = _data(task_name)
    numeric = features.select_dtypes("number")
    model = make_pipeline(StandardScaler(), estimator).fit(numeric, target)
    prediction = task.predict(model, numeric)
    outputs = pd.DataFrame(task.columns(prediction))
    metrics = {name: metric_on(task, name, target, prediction) for name in metrics_for(task.name)}
    rows = np.random.default_rng(0).integers(0, len(features), (2, REFERENCE_ROWS))
    reference = build_reference(
        features.iloc[rows[0]], prediction.take(rows[1]), task, metrics, seed=0, built_at=BUILT_AT
    )
    return Case(task, features, target, outputs, prediction, reference, model)


def metric_on(task: Task, name: str, actual: np.ndarray, prediction: Prediction) -> float:
    from mlops.tasks.metrics import get_metric

    return get_metric(name, task.name)(actual, prediction)


TASK_NAMES = ("binary", "multiclass", "regression")
