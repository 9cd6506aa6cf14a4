"""The task layer: the metric and family registries and the three tasks."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from mlops.config import DataConfig, parse_params
from mlops.errors import UsageError
from mlops.tasks import families
from mlops.tasks.metrics import (
    METRICS,
    TASK_NAMES,
    Prediction,
    get_metric,
    metrics_for,
    report_names,
)
from mlops.tasks.task import TASKS, get_task
from tests.conftest import ROOT

DOCUMENT = yaml.safe_load((ROOT / "params.yaml").read_text())


def _data(**changes: Any) -> DataConfig:
    return DataConfig.model_validate({**DOCUMENT["data"], **changes})


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_wine(as_frame=True)
    return bunch.data, pd.Series(bunch.target_names[bunch.target], name="cultivar")


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_diabetes(as_frame=True)
    return bunch.data, bunch.target


# --- the metric registry ---------------------------------------------------------


def test_every_task_has_metrics_and_every_metric_a_task() -> None:
    for task in TASK_NAMES:
        assert metrics_for(task), task
        assert TASKS[task].default_metric in metrics_for(task)
    assert all(metric.tasks <= set(TASK_NAMES) for metric in METRICS.values())


def test_a_metric_of_another_task_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'rmse' does not apply to a binary task; binary metrics"):
        get_metric("rmse", "binary")
    with pytest.raises(ValueError, match=r"'auc' is not a metric; regression metrics: rmse"):
        get_metric("auc", "regression")


def test_binary_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    prediction = Prediction((p1 >= 0.5).astype(int), np.column_stack([1 - p1, p1]), (0, 1))
    assert METRICS["roc_auc"](y, prediction) == pytest.approx(skm.roc_auc_score(y, p1))
    assert METRICS["pr_auc"](y, prediction) == pytest.approx(skm.average_precision_score(y, p1))
    assert METRICS["log_loss"](y, prediction) == pytest.approx(skm.log_loss(y, p1))
    assert METRICS["f1"](y, prediction) == pytest.approx(skm.f1_score(y, p1 >= 0.5))
    assert METRICS["brier"](y, prediction) == pytest.approx(skm.brier_score_loss(y, p1))
    # A ranking metric on one class is undefined, not an error.
    assert np.isnan(METRICS["roc_auc"](np.ones(5, int), prediction.take(np.arange(5))))


def test_multiclass_metrics_agree_with_scikit_learn(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = wine
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    prediction = get_task("multiclass").predict(model, x)
    proba = model.predict_proba(x)
    assert prediction.classes == ("class_0", "class_1", "class_2")
    assert (prediction.label == model.predict(x)).all()
    assert METRICS["roc_auc_ovr"](y.to_numpy(), prediction) == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert METRICS["f1_macro"](y.to_numpy(), prediction) == pytest.approx(
        skm.f1_score(y, model.predict(x), average="macro")
    )
    assert METRICS["log_loss"](y.to_numpy(), prediction) == pytest.approx(skm.log_loss(y, proba))
    # A subset missing a class: one-vs-rest AUC is undefined there.
    rows = (y != "class_2").to_numpy()
    assert np.isnan(METRICS["roc_auc_ovr"](y.to_numpy()[rows], prediction.take(rows)))


def test_regression_metrics_agree_with_scikit_learn(
    diabetes: tuple[pd.DataFrame, pd.Series],
) -> None:
    x, y = diabetes
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(x, y)
    prediction = get_task("regression").predict(model, x)
    value = model.predict(x)
    assert METRICS["rmse"](y.to_numpy(), prediction) == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, value))
    )
    assert METRICS["mae"](y.to_numpy(), prediction) == pytest.approx(
        skm.mean_absolute_error(y, value)
    )
    assert METRICS["r2"](y.to_numpy(), prediction) == pytest.approx(skm.r2_score(y, value))
    assert METRICS["mape"](y.to_numpy(), prediction) == pytest.approx(
        skm.mean_absolute_percentage_error(y, value)
    )
    # MAPE is undefined when an actual value is zero (not a huge number).
    assert np.isnan(METRICS["mape"](np.array([0.0, 1.0]), Prediction(np.array([0.5, 1.0]))))


# --- targets ----------------------------------------------------------------------


def test_binary_maps_labels_and_refuses_a_third_with_the_fix() -> None:
    task, config = get_task("binary"), _data()
    encoded = task.encode_target(pd.Series([">50K", " <=50K", ">50K."]), config, "income")
    assert encoded.tolist() == [1, 0, 1]
    with pytest.raises(UsageError, match=r"3 distinct labels: set data.task: multiclass"):
        task.encode_target(pd.Series([">50K", "<=50K", "maybe"]), config, "income")


def test_multiclass_keeps_labels_as_text_and_checks_data_classes() -> None:
    task = get_task("multiclass")
    config = _data(task="multiclass", positive_class=None, negative_class=None, classes=None)
    encoded = task.encode_target(pd.Series([1, 2, 3.0, 2]), config, "grade")
    assert encoded.tolist() == ["1", "2", "3", "2"]
    strict = config.model_copy(update={"classes": ("a", "b", "c")})
    with pytest.raises(UsageError, match=r"labels not in data.classes: \['d'\]"):
        task.encode_target(pd.Series(["a", "b", "c", "d"]), strict, "grade")
    with pytest.raises(UsageError, match=r"2 class\(es\).*set data.task: binary"):
        task.encode_target(pd.Series(["a", "b", "a"]), config, "grade")


def test_regression_refuses_text_and_a_constant() -> None:
    task = get_task("regression")
    config = _data(task="regression", positive_class=None, negative_class=None)
    assert task.encode_target(pd.Series(["1.5", 2, None]).dropna(), config, "y").dtype == "float64"
    with pytest.raises(UsageError, match=r"1 values that are not finite numbers \(\['n/a'\]\)"):
        task.encode_target(pd.Series([1.0, "n/a", 3.0]), config, "y")
    with pytest.raises(UsageError, match="is constant"):
        task.encode_target(pd.Series([2.0, 2.0]), config, "y")
    with pytest.raises(UsageError, match="1 missing values"):
        task.encode_target(pd.Series([2.0, None, 3.0]), config, "y")


# --- splits and folds ---------------------------------------------------------------


def test_classification_folds_keep_every_class_in_every_fold(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    _, y = wine
    for fit, score in get_task("multiclass").folds(y, 5, seed=0, what="tune.cv_folds"):
        assert set(y.iloc[score]) == set(y)
        assert len(set(fit) & set(score)) == 0


def test_regression_folds_cover_the_range_of_the_target(
    diabetes: tuple[pd.DataFrame, pd.Series],
) -> None:
    _, y = diabetes
    folds = get_task("regression").folds(y, 3, seed=0, what="tune.cv_folds")
    quartiles = pd.qcut(y, 4, labels=False)
    for _, score in folds:
        # Quantile strata: each fold holds about a quarter of each quartile's rows.
        shares = quartiles.iloc[score].value_counts(normalize=True)
        assert shares.min() > 0.2, shares


def test_a_class_too_rare_to_fold_names_the_class() -> None:
    y = pd.Series(["a"] * 10 + ["b"] * 10 + ["rare"])
    with pytest.raises(UsageError, match=r"tune.cv_folds: 3 parts need .* \['rare'\] have 1"):
        get_task("multiclass").folds(y, 3, seed=0, what="tune.cv_folds")


def test_split_and_sample_are_seeded_and_balanced(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = wine
    frame = x.assign(cultivar=y)
    task = get_task("multiclass")
    rest, part = task.split(frame, "cultivar", 0.25, seed=1, what="split.test_size")
    assert len(rest) + len(part) == len(frame)
    again = task.split(frame, "cultivar", 0.25, seed=1, what="split.test_size")[1]
    assert part.index.equals(again.index)
    shares = part["cultivar"].value_counts(normalize=True)
    assert (shares - y.value_counts(normalize=True)).abs().max() < 0.03
    sample = task.sample(frame, "cultivar", 60, seed=1)
    assert len(sample) == 60
    assert sample.index.is_monotonic_increasing


def test_a_sample_keeps_a_rare_class_s_rows_for_the_folds() -> None:
    """14,000 football results with 4 games of 9 home goals, kept by split for 3 folds:
    a sample of 5,000 kept 1 or 2 of them and impute's 3-fold CV refused the run
    (found on R's Bundesliga). ``keep`` tops such a class up from the rows left out."""
    rng = np.random.default_rng(0)
    goals = np.concatenate([rng.integers(0, 4, 13_996), [9, 9, 9, 9]]).astype(str)
    frame = pd.DataFrame({"x": rng.normal(size=len(goals)), "goals": goals})
    task = get_task("multiclass")
    plain = task.sample(frame, "goals", 5000, seed=1)
    assert (plain["goals"] == "9").sum() < 3
    kept = task.sample(frame, "goals", 5000, seed=1, keep=3)
    assert (kept["goals"] == "9").sum() == 3
    assert kept.index.is_monotonic_increasing
    assert set(plain.index) < set(kept.index)  # the same sample, topped up
    assert len(kept) <= 5003
    task.check_parts(kept["goals"], 3, "impute.auto.cv_folds")  # no longer refused
    assert task.sample(frame, "goals", 5000, seed=1, keep=3).index.equals(kept.index)
    assert len(task.sample(frame.iloc[:20], "goals", 10, seed=1, keep=50)) == 20  # all rows


# --- predictions ----------------------------------------------------------------------


def test_prediction_columns_per_task(
    wine: tuple[pd.DataFrame, pd.Series], diabetes: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = wine
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y)
    multiclass = get_task("multiclass")
    columns = multiclass.columns(multiclass.predict(model, x))
    assert list(columns) == [f"probability_{c}" for c in model.classes_] + ["prediction"]
    assert np.allclose(
        np.column_stack([columns[f"probability_{c}"] for c in model.classes_]).sum(axis=1), 1.0
    )
    xr, yr = diabetes
    regressor = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(xr, yr)
    regression = get_task("regression")
    assert list(regression.columns(regression.predict(regressor, xr))) == ["prediction"]
    binary = get_task("binary")
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y == "class_0")
    assert list(binary.columns(binary.predict(model, x))) == ["probability", "prediction"]


def test_dummies_are_the_trivial_models() -> None:
    assert get_task("binary").dummy().get_params()["strategy"] == "prior"
    assert get_task("regression").dummy().get_params()["strategy"] == "mean"


# --- the family registry --------------------------------------------------------------


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_family_builds_for_every_task_it_declares(task: str) -> None:
    for name in families.families_for(task):  # type: ignore[arg-type]
        estimator = families.build_estimator(name, task, {}, ["c"], seed=3)  # type: ignore[arg-type]
        assert estimator.get_params()["random_state"] == 3
        assert families.hyperparameters(name, task)  # type: ignore[arg-type]
        assert not families.hyperparameters(name, task) & families.get_family(name).derived  # type: ignore[arg-type]


def test_a_family_asked_for_a_task_it_cannot_do_names_the_ones_that_can() -> None:
    with pytest.raises(ValueError, match=r"'logistic_regression' does not do regression; .*ridge"):
        families.get_family("logistic_regression").estimator("regression")


def test_default_fixed_values_are_valid_hyperparameters() -> None:
    for task in TASK_NAMES:
        for name in families.families_for(task):
            fixed = families.default_fixed(name, task, frozenset())
            families.check_hyperparameters(name, task, fixed)


def test_trusted_types_cover_every_family() -> None:
    trusted = families.trusted_types()
    for family in families.FAMILIES.values():
        assert set(family.trusted_types) <= set(trusted)


# --- params checked against the task ---------------------------------------------------


def _params(**sections: dict[str, Any]) -> Any:
    document = copy.deepcopy(DOCUMENT)
    for section, values in sections.items():
        document[section] = {**document[section], **values}
    return parse_params(document)


def test_params_refuse_what_does_not_fit_the_task() -> None:
    with pytest.raises(UsageError, match=r"tune.metric: 'rmse' does not apply to a binary task"):
        _params(tune={"metric": "rmse"})
    with pytest.raises(UsageError, match=r"gate.baseline_margin: no baseline 'mean' for binary"):
        _params(gate={"baseline_margin": {"mean": 0.1}})
    with pytest.raises(UsageError, match=r"gate.minimum: reports/metrics.json has no 'r2'"):
        _params(gate={"minimum": {"r2": 0.1}})
    with pytest.raises(UsageError, match=r"positive_class and negative_class are for a binary"):
        _params(data={"task": "regression"})
    with pytest.raises(UsageError, match=r"a binary task needs positive_class"):
        _params(data={"positive_class": None})


def test_report_names_hold_each_tasks_metrics_and_baselines() -> None:
    names = report_names("regression", ("mean", "linear"))
    assert {"rmse", "r2", "baseline_mean", "business_value"} <= set(names)
    assert "ece" not in names
    assert "business_threshold" in report_names("binary", ("majority", "logistic"))


def test_a_scorer_is_greater_when_better_for_a_loss_too(
    diabetes: tuple[pd.DataFrame, pd.Series],
) -> None:
    x, y = diabetes
    task = get_task("regression")
    good = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
    poor = HistGradientBoostingRegressor(max_iter=1, random_state=0).fit(x, y)
    score = task.scorer(METRICS["rmse"])
    assert score(good, x, y) > score(poor, x, y)
    assert score(good, x, y) == pytest.approx(-METRICS["rmse"](y.to_numpy(), task.predict(good, x)))
