"""Tuning, impute's auto and the model card on a multiclass and a regression task.

Real, small data (scikit-learn's wine and diabetes sets): a tiny search per
task must find a model better than the trivial one by the task's own metric, in
that metric's direction; impute's ``auto`` must choose by it too.
"""

from __future__ import annotations

import json
import math
from functools import partial
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from mlops.config import ImputeConfig
from mlops.errors import UsageError
from mlops.features.imputation import cv_scorer, mask_values, plan_imputation, read_quality
from mlops.features.pipeline import build_pipeline, model_card
from mlops.tasks.metrics import METRICS, TaskName, get_metric
from mlops.tasks.task import get_task
from mlops.tuning import search
from tests.model.tasks import dataset, simple_plan, tune_config

optuna.logging.set_verbosity(optuna.logging.WARNING)
TASKS: tuple[TaskName, ...] = ("multiclass", "regression")


def _search(task: TaskName, metric: str) -> tuple[optuna.Study, dict[str, Any], float]:
    """A 3-trial, 3-fold search; (study, best result, the trivial model's CV score)."""
    frame, target = dataset(task)
    plan = simple_plan(frame, target)
    config = tune_config(task, metric=metric)
    doer = get_task(task)
    folds = doer.folds(frame[target], config.cv_folds, 0, "tune.cv_folds")
    objective = search.make_objective(frame, plan, config, folds, seed=0, task=task)
    study = optuna.create_study(
        direction=search.study_direction(config),
        sampler=search.make_sampler(config, 0),
        pruner=search.make_pruner(config),
    )
    reason = search.optimise(study, objective, config, seed=0)
    trivial = [
        get_metric(metric, task)(
            frame[target].iloc[score].to_numpy(),
            doer.predict(
                doer.dummy().fit(frame.iloc[fit][plan.names()], frame[target].iloc[fit]),
                frame.iloc[score][plan.names()],
            ),
        )
        for fit, score in folds
    ]
    return study, search.best_result(study, config, reason), float(np.mean(trivial))


@pytest.mark.parametrize(
    ("task", "metric", "direction"),
    [
        ("multiclass", "log_loss", "minimize"),
        ("multiclass", "f1_macro", "maximize"),
        ("regression", "rmse", "minimize"),
        ("regression", "r2", "maximize"),
    ],
)
def test_a_tiny_search_beats_the_trivial_model_in_the_metric_s_direction(
    task: TaskName, metric: str, direction: str
) -> None:
    study, best, trivial = _search(task, metric)
    assert best["direction"] == direction == study.direction.name.lower()
    values = [t.value for t in study.trials if t.value is not None]
    assert len(values) == 3
    assert all(math.isfinite(v) for v in values)
    assert best["cv_score"] == round((min if direction == "minimize" else max)(values), 6)
    assert best["family"] in tune_config(task).families
    # Better than predicting the class rates / the mean, by the metric's own direction.
    sign = METRICS[metric].sign
    assert sign * best["cv_score"] > sign * trivial


def test_a_fold_where_the_metric_is_undefined_fails_the_trial_with_its_reason() -> None:
    # MAPE is undefined where an actual value is zero: the trial fails, on record,
    # and counts against the budget (it is not retried forever as a dead worker's).
    frame, target = dataset("regression")
    frame = frame.assign(**{target: frame[target].where(frame.index % 7 != 0, 0.0)})
    plan = simple_plan(frame, target)
    config = tune_config("regression", metric="mape", n_trials=2, families=["ridge"])
    folds = get_task("regression").folds(frame[target], 3, 0, "tune.cv_folds")
    objective = search.make_objective(frame, plan, config, folds, seed=0, task="regression")
    study = optuna.create_study(direction=search.study_direction(config))
    assert search.optimise(study, objective, config, seed=0) == "n_trials"
    assert [t.user_attrs[search.ERROR_ATTR] for t in study.trials] == [
        "mape is undefined on fold 1"
    ] * 2


def _gappy_diabetes() -> tuple[pd.DataFrame, str]:
    frame, target = dataset("regression")
    numeric = ["bmi", "bp", "s5"]
    gappy = mask_values(frame, numeric, 0.2, "mnar", seed=1)
    sex = gappy["sex"].mask(np.random.default_rng(2).random(len(frame)) < 0.1)
    return gappy.assign(sex=sex), target


AUTO = {
    "policy": "impute",
    "numeric": "auto",
    "categorical": "auto",
    "overrides": {},
    "indicators": False,
    "knn": {"n_neighbors": 5},
}


def test_impute_auto_chooses_by_the_regression_metric() -> None:
    # On this data the highest RMSE is another strategy than the lowest, in each group.
    family = "ridge"
    frame, target = _gappy_diabetes()
    config = ImputeConfig.model_validate(
        {**AUTO, "auto": {"family": family, "cv_folds": 3, "max_rows": 300}}
    )
    make = partial(build_pipeline, family=family, params={}, seed=0, task="regression")
    score, rows = cv_scorer(
        frame, target, make, task="regression", metric="rmse", folds=3, max_rows=300, seed=0
    )
    scored_as = {"metric": "rmse", "family": family, "rows": rows, "folds": 3}
    quality = read_quality({}, list(frame.columns), target)
    plan = plan_imputation(frame, target, quality, config, seed=0, score=score, scored_as=scored_as)
    numeric, categorical = plan.comparisons
    assert rows == 300
    assert set(numeric.scores) == {"median", "mean", "knn"}
    assert set(categorical.scores) == {"most_frequent", "missing_category"}
    for comparison in (numeric, categorical):
        values = comparison.scores
        assert all(30 < v < 80 for v in values.values()), values  # RMSE; the std is ~77
        # The lowest error wins (the first of ties).
        assert comparison.chosen == min(values, key=lambda c: values[c])
        assert (comparison.metric, comparison.family) == ("rmse", family)


def test_impute_auto_with_a_metric_undefined_on_the_data_is_one_line() -> None:
    frame, target = _gappy_diabetes()
    frame = frame.assign(**{target: frame[target].where(frame.index % 5 != 0, 0.0)})
    make = partial(build_pipeline, family="ridge", params={}, seed=0, task="regression")
    score, _ = cv_scorer(
        frame, target, make, task="regression", metric="mape", folds=2, max_rows=200, seed=0
    )
    with pytest.raises(UsageError, match=r"^params.yaml tune.metric: mape is undefined") as caught:
        score(simple_plan(frame, target))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("task", TASKS)
def test_the_model_card_holds_the_task_and_the_model_s_classes(task: TaskName) -> None:
    frame, target = dataset(task)
    plan = simple_plan(frame, target)
    config = tune_config(task)
    family = config.families[0]
    params = {**config.fixed[family], "learning_rate": 0.1, "max_leaf_nodes": 8}
    pipeline = build_pipeline(plan, family, params, seed=0, task=task)
    pipeline.fit(frame[plan.names()], frame[target])
    best = {"family": family, "params": params, "metric": config.metric, "cv_score": 0.5}
    card = model_card(
        best=best,
        plan=plan,
        rows=len(frame),
        split_rows=len(frame),
        data_md5="0" * 32,
        versions={"scikit-learn": "x"},
        task=task,
        classes=get_task(task).classes(pipeline),
    )
    expected = ["class_0", "class_1", "class_2"] if task == "multiclass" else []
    assert (card["task"], card["classes"]) == (task, expected)
    assert json.loads(json.dumps(card)) == card  # plain JSON values, as written
