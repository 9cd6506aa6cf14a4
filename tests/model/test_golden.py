"""Golden examples: pinned predictions of a model fitted on a fixed sample.

If one moves, the pipeline's behaviour changed (an encoder, an imputer, a
default of the estimator): update the pins only after understanding why.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from mlops.evaluation.explaining import explain, reference_values
from mlops.features.imputation import ImputationPlan
from mlops.tasks.task import get_task
from tests.model.conftest import TARGET

BINARY = get_task("binary")

PERSON: dict[str, Any] = {
    "age": 45.0,
    "workclass": "Private",
    "fnlwgt": 180000.0,
    "education": "Bachelors",
    "education_num": 13.0,
    "marital_status": "Married-civ-spouse",
    "occupation": "Sales",
    "relationship": "Husband",
    "race": "White",
    "sex": "Male",
    "capital_gain": 0.0,
    "capital_loss": 0.0,
    "hours_per_week": 50.0,
    "native_country": "United-States",
}
GOLDEN = {
    "married salesman": ({}, 0.654332),
    "young part-timer": (
        {
            "age": 19.0,
            "education": "HS-grad",
            "education_num": 9.0,
            "marital_status": "Never-married",
            "occupation": "Handlers-cleaners",
            "relationship": "Own-child",
            "hours_per_week": 20.0,
        },
        0.00415,
    ),
    "large capital gain": (
        {
            "marital_status": "Never-married",
            "relationship": "Not-in-family",
            "capital_gain": 15024.0,
        },
        0.964629,
    ),
    # Imputed with the sample's most frequent values: Private, Exec-managerial.
    "unknown job": ({"workclass": None, "occupation": None}, 0.827016),
}


def frame(changes: dict[str, Any]) -> pd.DataFrame:
    row = pd.DataFrame([PERSON | changes])
    return row.astype({c: "str" for c in row.columns if isinstance(PERSON[c], str)})


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_prediction(model: Pipeline, plan: ImputationPlan, name: str) -> None:
    changes, expected = GOLDEN[name]
    probability = model.predict_proba(frame(changes)[plan.names()])[0, 1]
    assert probability == pytest.approx(expected, abs=2e-6)


def test_explain_agrees_with_the_model_on_golden_examples(
    model: Pipeline, plan: ImputationPlan, splits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    examples = pd.concat([frame(changes) for changes, _ in GOLDEN.values()], ignore_index=True)
    reference = reference_values(splits[0], plan.names())
    for row, (_, expected) in enumerate(GOLDEN.values()):
        explanation = explain(
            model,
            examples,
            task=BINARY,
            row=row,
            reference=reference,
            threshold=0.5,
            target=TARGET,
            source="x",
        )
        assert explanation.value == pytest.approx(expected, abs=2e-6)
        assert explanation.actual is None
    unknown = explain(
        model,
        examples,
        task=BINARY,
        row=3,
        reference=reference,
        threshold=0.5,
        target=TARGET,
        source="x",
    )
    assert unknown.steps["raw"]["occupation"] is None
    assert unknown.steps["impute"]["occupation"] == "Exec-managerial"
    assert unknown.steps["impute"]["workclass"] == "Private"
    assert unknown.predicted == 1
