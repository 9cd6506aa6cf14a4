"""Behavioural tests of a fitted model: invariance, direction, minimum quality, importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.pipeline import Pipeline

from mlops.config import EvaluateConfig, Params
from mlops.evaluation.report import fit_baselines, importances
from mlops.features.imputation import ImputationPlan
from mlops.tasks.task import get_task
from tests.model.conftest import PROTECTED, TARGET

Splits = tuple[pd.DataFrame, pd.DataFrame]


def proba(model: Pipeline, frame: pd.DataFrame, plan: ImputationPlan) -> np.ndarray:
    return get_task("binary").predict(model, frame[plan.names()]).positive


def test_protected_attributes_do_not_move_predictions(
    model: Pipeline, plan: ImputationPlan, splits: Splits
) -> None:
    test = splits[1]
    rng = np.random.default_rng(0)
    swapped = test.assign(**{c: rng.permutation(test[c].to_numpy()) for c in PROTECTED})
    assert not swapped["sex"].equals(test["sex"])
    np.testing.assert_array_equal(proba(model, swapped, plan), proba(model, test, plan))


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ({"capital_gain": 0.0}, {"capital_gain": 15024.0}),
        (
            {"education": "HS-grad", "education_num": 9.0},
            {"education": "Masters", "education_num": 14.0},
        ),
        ({"marital_status": "Never-married"}, {"marital_status": "Married-civ-spouse"}),
    ],
    ids=["capital_gain", "education", "marital_status"],
)
def test_direction_of_strong_signals(
    model: Pipeline,
    plan: ImputationPlan,
    splits: Splits,
    low: dict[str, object],
    high: dict[str, object],
) -> None:
    test = splits[1]
    lower = proba(model, test.assign(**low), plan)
    higher = proba(model, test.assign(**high), plan)
    assert higher.mean() > lower.mean() + 0.05
    assert (higher >= lower - 1e-9).mean() >= 0.9


def test_beats_both_baselines_on_held_out_rows(
    model: Pipeline, plan: ImputationPlan, splits: Splits
) -> None:
    train, test = splits
    y_true = test[TARGET].to_numpy()
    auc = metrics.roc_auc_score(y_true, proba(model, test, plan))
    baselines = {
        name: metrics.roc_auc_score(y_true, proba(b, test, plan))
        for name, b in fit_baselines(train, plan, get_task("binary"), seed=0).items()
    }
    assert auc >= 0.88
    assert baselines["majority"] == 0.5
    assert auc > baselines["logistic"]


def test_permutation_importance_is_seeded_and_finds_the_strong_signals(
    model: Pipeline, plan: ImputationPlan, splits: Splits, params: Params
) -> None:
    config: EvaluateConfig = params.evaluate.model_copy(
        update={
            "metric": "roc_auc",
            "importance": params.evaluate.importance.model_copy(
                update={"repeats": 2, "max_rows": 400}
            ),
        }
    )
    binary = get_task("binary")
    table = importances(model, splits[1], plan=plan, task=binary, config=config, seed=7)
    assert sorted(table["feature"]) == sorted(plan.names())
    assert table["importance"].is_monotonic_decreasing
    strong = {"capital_gain", "marital_status", "relationship", "age", "education", "occupation"}
    assert set(table["feature"].head(3)) <= strong
    # The sampling weight fnlwgt carries no signal about income.
    assert abs(table.set_index("feature").loc["fnlwgt", "importance"]) < 0.01
    again = importances(model, splits[1], plan=plan, task=binary, config=config, seed=7)
    pd.testing.assert_frame_equal(table, again)
