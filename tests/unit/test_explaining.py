"""`explain` per task: what it follows, the contributions, and what it prints."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops.evaluation.explaining import Explanation, explain, reference_values, render
from mlops.tasks.task import get_task

TARGET = "target"


def fitted(estimator: Any, frame: pd.DataFrame) -> Pipeline:
    model = Pipeline(
        [("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", estimator)]
    )
    return model.fit(frame.drop(columns=TARGET), frame[TARGET])


def dataset(loader: Any) -> pd.DataFrame:
    data = loader(as_frame=True)
    return data.data.assign(**{TARGET: data.target})


@pytest.fixture(scope="module")
def binary() -> tuple[Pipeline, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    frame = dataset(load_breast_cancer)  # target 0/1, as a binary task encodes it
    return fitted(LogisticRegression(max_iter=2000), frame), frame


@pytest.fixture(scope="module")
def multiclass() -> tuple[Pipeline, pd.DataFrame]:
    from sklearn.datasets import load_wine

    frame = dataset(load_wine)
    frame[TARGET] = frame[TARGET].map(lambda code: f"class_{code}")  # text, as multiclass
    return fitted(LogisticRegression(max_iter=1000), frame), frame


@pytest.fixture(scope="module")
def regression() -> tuple[Pipeline, pd.DataFrame]:
    from sklearn.datasets import load_diabetes

    frame = dataset(load_diabetes)
    return fitted(Ridge(), frame), frame


def explained(task: str, model: Pipeline, frame: pd.DataFrame, row: int) -> Explanation:
    features = list(model.feature_names_in_)
    return explain(
        model,
        frame,
        task=get_task(task),
        row=row,
        reference=reference_values(frame, features),
        threshold=0.3,
        target=TARGET,
        source="test",
    )


def occluded(model: Pipeline, frame: pd.DataFrame, row: int, feature: str) -> pd.DataFrame:
    """Row ``row`` with ``feature`` set to its typical value, as explain occludes it."""
    features = list(model.feature_names_in_)
    example = frame[features].iloc[[row]].copy()
    example[feature] = reference_values(frame, [feature])[feature]
    return example


def change(explanation: Explanation, feature: str) -> float:
    return next(c["change"] for c in explanation.contributions if c["feature"] == feature)


def test_binary_follows_the_positive_class_probability(
    binary: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = binary
    features = list(model.feature_names_in_)
    result = explained("binary", model, frame, row=3)
    proba = model.predict_proba(frame[features].iloc[[3]])[0, 1]
    assert result.quantity == "probability of the positive class (1)"
    assert result.explained_class == 1
    assert result.value == pytest.approx(proba, abs=1e-6)
    assert (result.predicted, result.threshold) == (int(proba >= 0.3), 0.3)
    assert result.actual == int(frame[TARGET].iloc[3])
    top = result.contributions[0]["feature"]
    moved = proba - model.predict_proba(occluded(model, frame, 3, top))[0, 1]
    assert change(result, top) == pytest.approx(moved, abs=1e-6)
    assert abs(change(result, top)) > 0
    text = render(result, top=3)
    assert (
        f"Probability of the positive class (1): {result.value:.4f} -> predicted "
        f"{result.predicted} at threshold 0.3"
    ) in text
    assert "change in the probability of the positive class (1) when set to" in text


def test_multiclass_follows_the_predicted_class_probability(
    multiclass: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = multiclass
    features = list(model.feature_names_in_)
    row = 100  # a class_1 wine: not the first class, so the column is not a default
    proba = model.predict_proba(frame[features].iloc[[row]])[0]
    predicted = model.classes_[proba.argmax()]
    assert predicted == "class_1"
    result = explained("multiclass", model, frame, row=row)
    assert result.quantity == "probability of the predicted class (class_1)"
    assert (result.explained_class, result.predicted) == ("class_1", "class_1")
    assert result.value == pytest.approx(proba.max(), abs=1e-6)
    assert result.threshold is None  # the class is the most probable one, no threshold
    assert result.actual == "class_1"
    column = list(model.classes_).index("class_1")
    for record in result.contributions:
        occluded_proba = model.predict_proba(occluded(model, frame, row, record["feature"]))
        assert record["change"] == pytest.approx(
            proba[column] - occluded_proba[0, column], abs=1e-6
        )
    text = render(result, top=3)
    assert (
        f"Probability of the predicted class (class_1): {result.value:.4f} -> predicted class_1\n"
        in text
    )
    assert "threshold" not in text


def test_regression_follows_the_predicted_value(
    regression: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = regression
    features = list(model.feature_names_in_)
    value = model.predict(frame[features].iloc[[5]])[0]
    result = explained("regression", model, frame, row=5)
    assert result.quantity == "predicted value"
    assert result.explained_class is None
    assert result.value == pytest.approx(value, abs=1e-6)
    assert result.predicted == pytest.approx(value)
    assert result.threshold is None
    assert result.actual == frame[TARGET].iloc[5]
    changes = {name: value - model.predict(occluded(model, frame, 5, name))[0] for name in features}
    assert {c["feature"]: c["change"] for c in result.contributions} == pytest.approx(
        changes, abs=1e-6
    )
    ranked = [c["feature"] for c in result.contributions]
    assert ranked[0] == max(changes, key=lambda name: abs(changes[name]))
    text = render(result, top=3)
    assert f"Predicted value: {result.value:.4f}\n" in text
    assert "change in the predicted value when set to the typical training value:" in text
    assert "-> predicted" not in text


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_explanation_is_plain_json(task: str, request: pytest.FixtureRequest) -> None:
    model, frame = request.getfixturevalue(task)
    frame = frame.copy()
    frame.iloc[0, 0] = np.nan  # a gap: traced as missing, then imputed
    document = explained(task, model, frame, row=0).to_dict()
    json.dumps(document, allow_nan=False)
    first = str(frame.columns[0])
    assert document["steps"]["raw"][first] is None
    assert document["steps"]["impute"][first] is not None
