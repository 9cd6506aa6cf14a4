"""Golden examples and a quality bar for multiclass and regression, as test_golden.py and
test_quality.py are for the binary demo: a model with fixed hyperparameters fitted on a
seeded split of wine (3 cultivars) and diabetes (a progression score).

If a pin moves, the pipeline's behaviour changed for that task (the split, an encoder, an
imputer, an estimator default): update it only after understanding why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.data.splitting import split
from mlops.evaluation.explaining import explain, reference_values
from mlops.features.pipeline import build_pipeline
from mlops.tasks.metrics import METRICS, TaskName, better
from mlops.tasks.task import get_task
from tests.model.tasks import dataset, simple_plan

PARAMS: dict[str, Any] = {
    "max_iter": 60,
    "learning_rate": 0.1,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 10,
    "early_stopping": False,
}
# Rows of the held-out split; multiclass: the three the model is least sure of.
GOLDEN: dict[TaskName, dict[int, Any]] = {
    "multiclass": {
        51: ("class_1", [4e-06, 0.558544, 0.441452]),
        30: ("class_0", [0.8178, 0.16806, 0.01414]),
        28: ("class_2", [0.002187, 0.047633, 0.950179]),
    },
    "regression": {0: 71.224138, 1: 174.101095, 2: 123.945974},
}
# The held-out bar each task's model clears, and the trivial model does not.
BAR = {"multiclass": ("log_loss", 0.1), "regression": ("rmse", 65.0)}


Fitted = tuple[TaskName, Any, pd.DataFrame, pd.DataFrame, str]


@pytest.fixture(scope="module", params=sorted(GOLDEN))
def fitted(request: pytest.FixtureRequest) -> Fitted:
    """(task, model, train split, test split, target column)."""
    task: TaskName = request.param
    frame, target = dataset(task)
    train, test = split(frame, target, 0.3, 0, task)
    plan = simple_plan(train, target)
    model = build_pipeline(plan, "hist_gradient_boosting", PARAMS, 0, task=task)
    return task, model.fit(train[plan.names()], train[target]), train, test, target


def test_golden_predictions(fitted: Fitted) -> None:
    task_name, model, _, test, _ = fitted
    task = get_task(task_name)
    rows = list(GOLDEN[task_name])
    prediction = task.predict(model, test.loc[rows, list(model.feature_names_in_)])
    for position, row in enumerate(rows):
        if task_name == "multiclass":
            label, proba = GOLDEN[task_name][row]
            assert prediction.label[position] == label
            assert prediction.proba is not None
            assert prediction.proba[position] == pytest.approx(proba, abs=2e-6)
        else:
            assert prediction.value[position] == pytest.approx(GOLDEN[task_name][row], abs=1e-5)


def test_the_quality_bar_on_the_held_out_split(
    fitted: Fitted,
) -> None:
    task_name, model, train, test, target = fitted
    task = get_task(task_name)
    metric, bar = BAR[task_name]
    features, y = list(model.feature_names_in_), test[target].to_numpy()
    value = METRICS[metric](y, task.predict(model, test[features]))
    trivial = task.dummy().fit(train[features], train[target])
    assert better(metric, value, bar) or value == bar
    assert not better(metric, METRICS[metric](y, task.predict(trivial, test[features])), bar)


def test_explain_follows_what_the_model_predicts(
    fitted: Fitted,
) -> None:
    task_name, model, train, test, target = fitted
    task = get_task(task_name)
    features = list(model.feature_names_in_)
    reference = reference_values(train, features)
    rows = test.loc[list(GOLDEN[task_name])].reset_index(drop=True)
    prediction = task.predict(model, rows[features])
    for row in range(len(rows)):
        explanation = explain(
            model,
            rows,
            task=task,
            row=row,
            reference=reference,
            threshold=0.5,
            target=target,
            source="x",
        )
        expected = (
            prediction.value[row]
            if prediction.proba is None
            else float(np.max(prediction.proba[row]))
        )
        assert explanation.value == pytest.approx(expected, abs=1e-6)  # explain rounds to 6
