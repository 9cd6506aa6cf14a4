"""The business metric per task: expected value per prediction (binary: its best threshold),
and its correlation with the ML metric over tuning trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.config import (
    BusinessConfig,
    CategoricalParam,
    FloatParam,
    IntParam,
    Params,
    TuneConfig,
)
from mlops.evaluation.business import (
    ClassValue,
    CostValue,
    OutcomeValue,
    TrialConfig,
    optimal_value,
    parse_trials,
    pick_trials,
    spearman,
    value_at,
    value_curve,
)
from mlops.evaluation.report import correlate_trials
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import get_task

VALUES = BusinessConfig(
    true_positive=40.0,
    false_positive=-10.0,
    true_negative=0.0,
    false_negative=-5.0,
    correct=3.0,
    incorrect=-1.0,
    over_prediction_cost=2.0,
    under_prediction_cost=0.5,
    correlation_trials=6,
    correlation_rows=100,
)


def brute_force(y: np.ndarray, p: np.ndarray, threshold: float, v: BusinessConfig) -> float:
    predicted = p >= threshold
    outcomes = {
        "true_positive": predicted & (y == 1),
        "false_positive": predicted & (y == 0),
        "true_negative": ~predicted & (y == 0),
        "false_negative": ~predicted & (y == 1),
    }
    return sum(getattr(v, name) * mask.sum() for name, mask in outcomes.items()) / len(y)


def test_value_at_a_threshold_by_hand() -> None:
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.3, 0.6, 0.1])
    # At 0.5: TP (0.9), FN (0.3), FP (0.6), TN (0.1) -> (40 - 5 - 10 + 0) / 4.
    assert value_at(y, p, 0.5, VALUES) == pytest.approx(25 / 4)
    # At 0.3 the 0.3 row is predicted positive (>=): 2 TP, 1 FP, 1 TN.
    assert value_at(y, p, 0.3, VALUES) == pytest.approx((80 - 10) / 4)


scores = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=200, deadline=None)
@given(scores, st.data())
def test_optimal_value_is_the_best_over_all_thresholds(
    raw: list[float], data: st.DataObject
) -> None:
    p = np.round(np.array(raw), 2)  # rounding makes ties, the tricky case
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(p), max_size=len(p))))
    threshold, value = optimal_value(y, p, VALUES)
    # Acting on each score and above, or (below a score of 1.0) on nobody.
    candidates = [*np.unique(p), *([np.inf] if p.max() < 1.0 else [])]
    best = max(brute_force(y, p, t, VALUES) for t in candidates)
    assert value == pytest.approx(best)
    assert 0.0 <= threshold <= 1.0
    assert brute_force(y, p, threshold, VALUES) == pytest.approx(value)


def test_acting_on_nobody_wins_when_every_action_loses() -> None:
    losing = VALUES.model_copy(update={"true_positive": -1.0, "false_negative": 0.0})
    threshold, value = optimal_value(np.array([1, 0, 1]), np.array([0.9, 0.5, 0.2]), losing)
    assert (threshold, value) == (1.0, 0.0)


def test_ties_pick_the_highest_threshold() -> None:
    free = VALUES.model_copy(update={"false_positive": 0.0})
    # Predicting the 0.2 negative positive costs nothing: 0.8 and 0.2 tie; 0.8 acts on fewer.
    threshold, _ = optimal_value(np.array([1, 0]), np.array([0.8, 0.2]), free)
    assert threshold == 0.8


def test_value_curve_is_a_grid_for_the_plot() -> None:
    curve = value_curve(np.array([1, 0]), np.array([0.8, 0.2]), VALUES)
    assert curve["threshold"].iloc[0] == 0.0
    assert curve["threshold"].iloc[-1] == 1.0
    assert len(curve) == 101
    assert curve["value"].iloc[50] == pytest.approx((40 + 0) / 2)


def test_binary_report_has_the_best_and_the_configured_threshold() -> None:
    y, p = np.array([1, 1, 0, 0]), np.array([0.9, 0.3, 0.6, 0.1])
    prediction = Prediction((p >= 0.5).astype(int), np.column_stack([1 - p, p]), (0, 1))
    report = OutcomeValue().report(y, prediction, VALUES, 0.5)
    assert report["values"] == {
        "true_positive": 40.0, "false_positive": -10.0, "true_negative": 0.0,
        "false_negative": -5.0,
    }  # fmt: skip
    assert report["value_at_threshold"] == pytest.approx(25 / 4)
    threshold, value = optimal_value(y, p, VALUES)
    assert (report["best_threshold"], report["value"]) == (threshold, round(value, 6))
    assert set(OutcomeValue().tables(y, prediction, VALUES)) == {"business"}


def test_multiclass_value_is_the_mean_of_right_and_wrong_values() -> None:
    y = np.array(["a", "b", "c", "a"])
    prediction = Prediction(np.array(["a", "c", "c", "b"]))  # 2 right, 2 wrong
    assert ClassValue().value(y, prediction, VALUES) == pytest.approx((2 * 3.0 - 2 * 1.0) / 4)
    report = ClassValue().report(y, prediction, VALUES, 0.5)
    assert report == {"values": {"correct": 3.0, "incorrect": -1.0}, "value": 1.0}
    assert ClassValue().tables(y, prediction, VALUES) == {}


def test_regression_value_is_minus_the_mean_cost_of_over_and_under_prediction() -> None:
    y = np.array([10.0, 10.0, 10.0, 10.0])
    prediction = Prediction(np.array([12.0, 10.0, 6.0, 11.0]))
    # Over by 2 and 1 (mean 0.75 over 4 predictions); under by 4 (mean 1.0).
    expected = -(2.0 * 0.75 + 0.5 * 1.0)
    assert CostValue().value(y, prediction, VALUES) == pytest.approx(expected)
    report = CostValue().report(y, prediction, VALUES, 0.5)
    assert report["values"] == {"over_prediction_cost": 2.0, "under_prediction_cost": 0.5}
    assert (report["mean_over_prediction"], report["mean_under_prediction"]) == (0.75, 1.0)
    assert report["value"] == pytest.approx(expected)
    perfect = CostValue().value(y, Prediction(y.copy()), VALUES)
    assert perfect == 0.0


# --- tuning trials -------------------------------------------------------------------


# A space of its own, so these tests do not move with params.yaml's.
SPACE = {
    "hist_gradient_boosting": {
        "learning_rate": FloatParam(type="float", low=0.03, high=0.3, log=True),
        "max_leaf_nodes": IntParam(type="int", low=8, high=64, log=True),
        "min_samples_leaf": IntParam(type="int", low=10, high=200, log=True),
        "l2_regularization": FloatParam(type="float", low=1e-6, high=10.0, log=True),
    },
    "random_forest": {
        "n_estimators": IntParam(type="int", low=50, high=200, log=False),
        "max_depth": IntParam(type="int", low=6, high=24, log=False),
        "min_samples_leaf": IntParam(type="int", low=1, high=20, log=False),
        "max_features": CategoricalParam(type="categorical", choices=("sqrt", "log2", 0.5)),
    },
    "logistic_regression": {
        "C": FloatParam(type="float", low=1e-3, high=100.0, log=True),
        "class_weight": CategoricalParam(type="categorical", choices=(None, "balanced")),
    },
}
FIXED = {
    "hist_gradient_boosting": {"max_iter": 300},
    "random_forest": {"n_jobs": 1},
    "logistic_regression": {"max_iter": 2000},
}


@pytest.fixture
def tune(params: Params) -> TuneConfig:
    return params.tune.model_copy(
        update={
            "families": ("hist_gradient_boosting", "logistic_regression"),
            "space": SPACE,
            "fixed": FIXED,
        }
    )


def optuna_table() -> pd.DataFrame:
    """What Optuna's study.trials_dataframe() gives for this project's tuner."""
    hgb = "params_hist_gradient_boosting."
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "value": [0.91, 0.89, np.nan, 0.90],
            "params_family": [
                "hist_gradient_boosting",
                "logistic_regression",
                "hist_gradient_boosting",
                "hist_gradient_boosting",
            ],
            f"{hgb}learning_rate": [0.1, np.nan, 0.2, 0.05],
            f"{hgb}max_leaf_nodes": [12.0, np.nan, 20.0, np.nan],
            f"{hgb}min_samples_leaf": [20.0, np.nan, 30.0, 40.0],
            f"{hgb}l2_regularization": [0.1, np.nan, 0.2, 0.3],
            "params_logistic_regression.C": [np.nan, 2.5, np.nan, np.nan],
            "params_logistic_regression.class_weight": [np.nan, np.nan, np.nan, np.nan],
            "state": ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"],
        }
    )


def test_parse_optuna_trials_with_types_restored_and_fixed_params(tune: TuneConfig) -> None:
    configs = parse_trials(optuna_table(), tune)
    assert isinstance(configs, list)
    # Trial 2 failed; trial 3 lacks max_leaf_nodes, so it cannot be refitted.
    assert [c.number for c in configs] == [0, 1]
    first, second = configs
    assert first.family == "hist_gradient_boosting"
    assert first.params["max_leaf_nodes"] == 12
    assert isinstance(first.params["max_leaf_nodes"], int)
    assert first.params["max_iter"] == 300  # tune.fixed
    # An empty cell is the choice None (a CSV cannot say null otherwise).
    assert second.params == {"max_iter": 2000, "C": 2.5, "class_weight": None}
    assert second.score == 0.89


def test_parse_the_tune_stages_own_trials_table(tune: TuneConfig) -> None:
    """reports/tuning/trials.csv as the tune stage writes it."""
    table = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["complete", "pruned", "complete"],
            "score": [0.888, 0.5, 0.916],
            "best_score": [0.888, 0.888, 0.916],
            "family": ["logistic_regression", "logistic_regression", "hist_gradient_boosting"],
            "hist_gradient_boosting.l2_regularization": [np.nan, np.nan, 0.00028],
            "hist_gradient_boosting.learning_rate": [np.nan, np.nan, 0.049],
            "hist_gradient_boosting.max_leaf_nodes": [np.nan, np.nan, 31.0],
            "hist_gradient_boosting.min_samples_leaf": [np.nan, np.nan, 10.0],
            "logistic_regression.C": [0.0043, 0.2, np.nan],
            "logistic_regression.class_weight": ["balanced", np.nan, np.nan],
        }
    )
    configs = parse_trials(table, tune)
    assert isinstance(configs, list)
    assert [(c.number, c.family) for c in configs] == [
        (0, "logistic_regression"),
        (2, "hist_gradient_boosting"),
    ]
    assert configs[0].params["class_weight"] == "balanced"
    assert configs[1].params["max_leaf_nodes"] == 31


def test_parse_plain_trials_of_a_single_family(tune: TuneConfig) -> None:
    table = pd.DataFrame(
        {
            "score": [0.9],
            "learning_rate": [0.1],
            "max_leaf_nodes": [10],
            "min_samples_leaf": [20],
            "l2_regularization": [0.5],
        }
    )
    single = tune.model_copy(update={"families": ("hist_gradient_boosting",)})
    configs = parse_trials(table, single)
    assert isinstance(configs, list)
    assert configs[0].family == "hist_gradient_boosting"
    assert configs[0].number == 0
    assert parse_trials(table, tune) == []  # two families searched and no family column


def test_categorical_choice_comes_back_with_its_type(tune: TuneConfig) -> None:
    table = pd.DataFrame(
        {
            "value": [0.9, 0.8],
            "params_family": ["random_forest"] * 2,
            "params_random_forest.n_estimators": [100.0, 120.0],
            "params_random_forest.max_depth": [8.0, 9.0],
            "params_random_forest.min_samples_leaf": [2.0, 3.0],
            "params_random_forest.max_features": ["0.5", "cube"],
        }
    )
    configs = parse_trials(table, tune)
    assert isinstance(configs, list)
    assert [c.params["max_features"] for c in configs] == [0.5]  # "cube" is not a choice


def test_a_table_without_scores_says_why(tune: TuneConfig) -> None:
    reason = parse_trials(pd.DataFrame({"number": [0]}), tune)
    assert isinstance(reason, str)
    assert "no score column" in reason


def test_pick_trials_spreads_over_scores() -> None:
    configs = [TrialConfig(i, "f", {}, score) for i, score in enumerate([0.5, 0.9, 0.7, 0.6, 0.8])]
    assert [c.score for c in pick_trials(configs, 3)] == [0.5, 0.7, 0.9]
    assert len(pick_trials(configs, 10)) == 5


def test_spearman_is_none_when_undefined() -> None:
    assert spearman([1.0, 2.0], [1.0, 2.0]) is None
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_correlation_unavailable_is_reported_not_raised(params: Params, tune: TuneConfig) -> None:
    frame = pd.DataFrame({"income": [0, 1]})
    binary = get_task("binary")
    plan = None  # never reached: each case stops before any refit
    few = optuna_table().assign(**{"params_hist_gradient_boosting.max_leaf_nodes": np.nan})
    cases = {
        "no tuning trials table": (None, params.evaluate),
        "switched off": (
            optuna_table(),
            params.evaluate.model_copy(
                update={"business": VALUES.model_copy(update={"correlation_trials": 0})}
            ),
        ),
        "2 usable trial(s)": (optuna_table(), params.evaluate),
        "1 usable trial(s)": (few, params.evaluate),
    }
    for reason, (trials, config) in cases.items():
        result = correlate_trials(
            trials,
            frame,
            frame,
            plan=plan,  # type: ignore[arg-type]
            task=binary,
            config=config,
            tune=tune,
            seed=0,
        )
        assert result["available"] is False
        assert reason in result["reason"]
        assert result["spearman"] is None
