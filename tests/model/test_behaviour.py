"""Behavioural tests of a fitted model: invariance, direction, minimum quality, importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.pipeline import Pipeline

from mlops.config import EvaluateConfig, Params
from mlops.evaluation import fit_baselines, importances, positive_proba
from mlops.imputation import ImputationPlan
from tests.model.conftest import PROTECTED, TARGET

Splits = tuple[pd.DataFrame, pd.DataFrame]


def proba(model: Pipeline, frame: pd.DataFrame, plan: ImputationPlan) -> np.ndarray:
    return positive_proba(model, frame, plan.names())


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
        for name, b in fit_baselines(train, plan, seed=0).items()
    }
    assert auc >= 0.88
    assert baselines["majority"] == 0.5
    assert auc > baselines["logistic"]


def reference_importance(
    model: Pipeline, sample: pd.DataFrame, plan: ImputationPlan, repeats: int, seed: int
) -> dict[str, float]:
    """Textbook permutation importance: shuffle one raw column, run the whole pipeline."""
    scorer = metrics.get_scorer("roc_auc")
    features, y_true = plan.names(), sample[TARGET].to_numpy()
    base = scorer(model, sample[features], y_true)
    rng = np.random.default_rng(seed)
    result = {}
    for feature in features:
        drops = []
        for _ in range(repeats):
            order = rng.permutation(len(sample))
            shuffled = sample[features].copy()
            shuffled[feature] = sample[feature].to_numpy()[order]
            drops.append(base - scorer(model, shuffled, y_true))
        result[feature] = round(float(np.mean(drops)), 6)
    return result


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression"])
def test_fast_importance_equals_shuffling_raw_columns(
    plan: ImputationPlan, splits: Splits, params: Params, family: str
) -> None:
    from mlops.modeling import build_pipeline

    train, test = splits
    fitted = build_pipeline(plan, family, {"max_iter": 50}, seed=0).fit(
        train[plan.names()], train[TARGET]
    )
    config: EvaluateConfig = params.evaluate.model_copy(
        update={"metric": "roc_auc", "importance": params.evaluate.importance.model_copy(
            update={"repeats": 2, "max_rows": 400})}
    )  # fmt: skip
    fast = importances(fitted, test, plan, config, seed=7)
    sample = test.sample(n=400, random_state=7)
    expected = reference_importance(fitted, sample, plan, repeats=2, seed=7)
    assert dict(zip(fast["feature"], fast["importance"], strict=True)) == pytest.approx(
        expected, abs=1e-6
    )
    assert fast["importance"].is_monotonic_decreasing
