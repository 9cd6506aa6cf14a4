"""Evaluation of multiclass (scikit-learn's wine) and regression (diabetes) models: scores,
tables, baselines, importance, unavailable numbers, the trial correlation and the charts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from mlops.config import EvaluateConfig, FloatParam, Params, TuneConfig
from mlops.evaluation import charts, report
from mlops.evaluation.report import (
    ECE,
    REPORTS,
    Evaluation,
    class_calibration,
    class_ece,
    evaluate,
    flat_metrics,
    importances,
    score,
    undefined,
)
from mlops.features.imputation import FeaturePlan, ImputationPlan
from mlops.tasks import families
from mlops.tasks.metrics import Prediction, metrics_for, report_names
from mlops.tasks.task import Task, get_task

TARGET = "target"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BINARY = get_task("binary")
MULTICLASS, REGRESSION = get_task("multiclass"), get_task("regression")


def numeric_plan(frame: pd.DataFrame) -> ImputationPlan:
    """Every column but the target and the slice attributes, kept as it is."""
    features = [c for c in frame.columns if c not in (TARGET, "band", "pure")]
    return ImputationPlan(
        TARGET,
        tuple(
            FeaturePlan(name, "numeric", "keep", "", None, None, False, 0.0, (), None)
            for name in features
        ),
    )


def splits(task: Task, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    # A slice attribute: the first feature above or below its median.
    first = frame.iloc[:, 0]
    frame = frame.assign(band=np.where(first > first.median(), "high", "low"))
    return task.split(frame, TARGET, 0.3, 0, "test")


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_wine(as_frame=True).frame
    frame[TARGET] = "cultivar_" + frame[TARGET].astype(str)  # multiclass labels are text
    return splits(MULTICLASS, frame)


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.DataFrame]:
    return splits(REGRESSION, load_diabetes(as_frame=True).frame)


def fitted(task: Task, train: pd.DataFrame, plan: ImputationPlan) -> Any:
    model = families.build_estimator("hist_gradient_boosting", task.name, {"max_iter": 30}, [], 0)
    return model.fit(train[plan.names()], train[TARGET])


def eval_config(params: Params, metric: str) -> EvaluateConfig:
    slices = params.evaluate.slices.model_copy(
        update={"columns": ("band",), "bands": {}, "min_rows": 5}
    )
    importance = params.evaluate.importance.model_copy(update={"repeats": 2, "max_rows": 200})
    return params.evaluate.model_copy(
        update={"metric": metric, "slices": slices, "importance": importance}
    )


def run(
    task: Task,
    data: tuple[pd.DataFrame, pd.DataFrame],
    config: EvaluateConfig,
    tune: TuneConfig,
    trials: pd.DataFrame | None = None,
) -> Evaluation:
    train, test = data
    plan = numeric_plan(train)
    return evaluate(
        fitted(task, train, plan),
        train,
        test,
        plan=plan,
        task=task,
        config=config,
        tune=tune,
        seed=0,
        trials=trials,
    )


@pytest.fixture(scope="module")
def wine_result(wine: tuple[pd.DataFrame, pd.DataFrame], params: Params) -> Evaluation:
    return run(MULTICLASS, wine, eval_config(params, "log_loss"), params.tune)


@pytest.fixture(scope="module")
def diabetes_result(diabetes: tuple[pd.DataFrame, pd.DataFrame], params: Params) -> Evaluation:
    return run(REGRESSION, diabetes, eval_config(params, "rmse"), params.tune)


# --- multiclass --------------------------------------------------------------------


def wine_prediction(data: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[np.ndarray, Prediction]:
    train, test = data
    plan = numeric_plan(train)
    model = fitted(MULTICLASS, train, plan)
    return test[TARGET].to_numpy(), MULTICLASS.predict(model, test[plan.names()])


def test_multiclass_score_is_every_metric_and_a_mean_per_class_ece(
    wine: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    y, prediction = wine_prediction(wine)
    config = eval_config(params, "log_loss")
    values = score(MULTICLASS, y, prediction, config)
    assert list(values) == [*metrics_for("multiclass"), ECE]
    assert prediction.proba is not None
    expected_loss = metrics.log_loss(y, prediction.proba, labels=list(prediction.classes))
    assert values["log_loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert values["f1_macro"] == pytest.approx(
        metrics.f1_score(y, prediction.label, average="macro"), abs=1e-6
    )
    table = REPORTS["multiclass"].calibration(y, prediction, config.calibration_bins)
    assert table is not None
    assert list(table["class"].unique()) == list(prediction.classes)
    per_class = [report.expected_calibration_error(part) for _, part in table.groupby("class")]
    assert values[ECE] == pytest.approx(np.mean(per_class), abs=1e-6)


def test_class_calibration_is_one_vs_rest() -> None:
    y = np.array(["a", "b", "c", "a"])
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    prediction = Prediction(np.array(["a", "b", "c", "a"]), proba, ("a", "b", "c"))
    table = class_calibration(y, prediction, [0, 1, 2], bins=2)
    a = table[table["class"] == "a"]
    # Class a: 0.2 and 0.1 (not a) in [0, 0.5); 0.9 and 0.6 (both a) in [0.5, 1].
    assert a["rows"].tolist() == [2, 2]
    assert a["fraction_positive"].tolist() == [0.0, 1.0]
    assert a["mean_predicted"].tolist() == pytest.approx([0.15, 0.75])
    assert class_ece(table) == pytest.approx(
        np.mean([report.expected_calibration_error(t) for _, t in table.groupby("class")])
    )


def test_multiclass_tables_per_class_and_confusion(
    wine: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    y, prediction = wine_prediction(wine)
    tables = REPORTS["multiclass"].tables(y, prediction)
    assert set(tables) == {"per_class", "confusion"}
    per_class = tables["per_class"].set_index("class")
    assert list(per_class.index) == list(prediction.classes)
    recall = metrics.recall_score(
        y, prediction.label, labels=list(prediction.classes), average=None
    )
    np.testing.assert_allclose(per_class["recall"], recall)
    assert per_class["rows"].sum() == len(y)
    assert tables["confusion"]["actual"].tolist() == y.tolist()
    assert tables["confusion"]["predicted"].tolist() == prediction.label.tolist()


def test_multiclass_evaluation_end_to_end(wine_result: Evaluation) -> None:
    result = wine_result
    details = result.details
    assert details["task"] == "multiclass"
    assert details["higher_is_better"] is False
    assert "threshold" not in details  # no decision threshold for a multiclass model
    assert set(details["baselines"]) == {"majority", "logistic"}
    assert details["baselines"]["majority"]["log_loss"] > details["test"]["log_loss"]
    assert set(result.tables) == {"calibration", "confusion", "importance", "per_class"}
    accuracy = details["test"]["accuracy"]
    assert details["business"]["value"] == pytest.approx(accuracy * 1.0 + (1 - accuracy) * 0.0)
    names = set(report_names("multiclass", MULTICLASS.baselines))
    assert set(result.metrics) <= names
    fairness = {"selection_rate_ratio", "selection_rate_ratio_adjusted", "tpr_gap"}
    assert names - set(result.metrics) == {"business_correlation", *fairness}
    assert "business_correlation" in details["unavailable"]
    assert "validate.protected is empty" in details["unavailable"]["tpr_gap"]
    # Lower log loss on the training split: the gap, oriented, is positive.
    assert result.metrics["overfit_gap"] == pytest.approx(
        result.metrics["log_loss"] - result.metrics["train_score"], abs=1e-5
    )


# --- regression --------------------------------------------------------------------


def test_regression_evaluation_end_to_end(diabetes_result: Evaluation) -> None:
    result = diabetes_result
    details, flat = result.details, result.metrics
    assert list(details["test"]) == list(metrics_for("regression"))  # no ECE
    assert "calibration" not in details
    assert set(details["baselines"]) == {"mean", "linear"}
    # rmse is minimised: the model beats predicting the mean.
    assert flat["rmse"] < flat["baseline_mean"]
    assert flat["overfit_gap"] == pytest.approx(flat["rmse"] - flat["train_score"], abs=1e-5)
    assert set(result.tables) == {"importance", "predicted_actual", "residuals"}
    residuals, versus = result.tables["residuals"], result.tables["predicted_actual"]
    np.testing.assert_allclose(
        residuals["residual"], versus["actual"] - versus["predicted"], atol=1e-9
    )
    business = details["business"]
    assert business["value"] == pytest.approx(
        -(business["mean_over_prediction"] + business["mean_under_prediction"]), abs=1e-5
    )
    # With both costs 1, the cost per prediction is the mean absolute error.
    assert business["value"] == pytest.approx(-flat["mae"], abs=1e-5)
    names = set(report_names("regression", REGRESSION.baselines))
    fairness = {"fairness_mean_ratio", "fairness_error_gap"}
    assert names - set(flat) == {"business_correlation", *fairness}
    assert {"mean_actual", "mean_predicted"} <= set(details["slices"]["slices"][0])


def test_importance_is_the_oriented_drop_of_a_minimised_metric(
    diabetes: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    train, test = diabetes
    plan = numeric_plan(train)
    table = importances(
        fitted(REGRESSION, train, plan),
        test,
        plan=plan,
        task=REGRESSION,
        config=eval_config(params, "rmse"),
        seed=0,
    )
    # Shuffling a strong feature raises rmse: a positive importance, at the top.
    assert table["importance"].iloc[0] > 0
    assert set(table["feature"].head(3)) & {"bmi", "s5"}


def test_mape_with_a_zero_actual_is_left_out_with_its_reason(params: Params) -> None:
    y = np.array([0.0, 1.0, 2.0])
    values = score(REGRESSION, y, Prediction(np.array([0.5, 1.0, 2.5])), params.evaluate)
    assert values["mape"] is None
    assert values["rmse"] is not None
    assert undefined(REGRESSION, y, values) == {"mape": "an actual value is zero"}
    details = {
        "metric": "rmse",
        "test": values,
        "train": values,
        "baselines": {"mean": values, "linear": values},
        "margin_noise": {"mean": 0.2, "linear": 0.1},
        "business": {"value": -1.0, "correlation": {"spearman": 0.5}},
        "slices": {"worst": 1.0, "gap": 0.5, "too_small": 0, "slices": [{}], "unmeasured": []},
        "fairness": {
            "protected": ["sex"],
            "worst": {"fairness_mean_ratio": {"value": 0.9}, "fairness_error_gap": {"value": 0.1}},
            "too_small": [],
        },
    }
    flat, missing = flat_metrics(details)
    assert "mape" not in flat
    assert missing == {}
    assert set(flat) == set(report_names("regression", REGRESSION.baselines)) - {"mape"}


def test_business_correlation_over_regression_trials(
    diabetes: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    """Orientation from the registry: mae and the CV rmse both count lower as better."""
    space = {"ridge": {"alpha": FloatParam(type="float", low=1e-3, high=1e6, log=True)}}
    tune = params.tune.model_copy(
        update={"metric": "rmse", "families": ("ridge",), "space": space, "fixed": {"ridge": {}}}
    )
    trials = pd.DataFrame(
        {
            "number": range(4),
            "score": [55.0, 62.0, 74.0, 77.0],  # CV rmse: more shrinkage, worse fit
            "family": ["ridge"] * 4,
            "ridge.alpha": [1e2, 1e3, 1e4, 1e5],
            "state": ["complete"] * 4,
        }
    )
    # With both costs 1 the business value is minus the mean absolute error: a lower mae
    # is exactly more value, which +1 says once the metric is oriented.
    config = eval_config(params, "mae")
    business = config.business.model_copy(update={"correlation_trials": 4})
    result = run(
        REGRESSION, diabetes, config.model_copy(update={"business": business}), tune, trials
    )
    correlation = result.details["business"]["correlation"]
    assert correlation["available"] is True
    assert [t["trial"] for t in correlation["trials"]] == [0, 1, 2, 3]  # by CV score
    assert [t["business_value"] for t in correlation["trials"]] == [
        -t["mae"] for t in correlation["trials"]
    ]
    assert correlation["spearman"] == pytest.approx(1.0)
    assert correlation["spearman_cv_score"] == pytest.approx(1.0)
    assert result.metrics["business_correlation"] == 1.0


# --- charts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result_fixture", "charted"),
    [
        ("wine_result", {"calibration", "confusion", "importance"}),
        ("diabetes_result", {"importance", "predicted_actual", "residuals"}),
    ],
)
def test_charts_render_each_task_s_tables(
    result_fixture: str, charted: set[str], request: pytest.FixtureRequest
) -> None:
    result: Evaluation = request.getfixturevalue(result_fixture)
    pictures = charts.render(result.tables, result.details)
    assert set(pictures) == charted
    assert all(png.startswith(PNG_MAGIC) for png in pictures.values())
    assert charts.render(result.tables, result.details) == pictures  # same tables, same bytes


def test_charts_ignore_a_style_another_library_set(wine_result: Evaluation) -> None:
    """Optuna's plots switch pyplot to ggplot for the whole process; evaluate's charts
    stay the same bytes (and Optuna's own plotting puts the style back)."""
    import matplotlib

    before = charts.render(wine_result.tables, wine_result.details)
    with matplotlib.style.context("ggplot"):
        assert charts.render(wine_result.tables, wine_result.details) == before


def test_binary_charts_render_every_table(params: Params) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    prediction = Prediction((p >= 0.5).astype(int), np.column_stack([1 - p, p]), (0, 1))
    report = REPORTS["binary"]
    config = params.evaluate
    calibration = report.calibration(y, prediction, config.calibration_bins)
    assert calibration is not None
    tables = report.tables(y, prediction) | {
        "calibration": calibration,
        "importance": pd.DataFrame({"feature": ["a", "b"], "importance": [0.1, 0.0], "std": 0.0}),
    }
    tables |= report.business.tables(y, prediction, config.business)
    details = {
        "metric": "roc_auc",
        "classes": [0, 1],
        "test": score(get_task("binary"), y, prediction, config),
        "business": report.business.report(y, prediction, config.business, 0.5),
    }
    pictures = charts.render(tables, details)
    assert set(pictures) == {"roc", "pr", "confusion", "calibration", "importance", "business"}
    assert all(png.startswith(PNG_MAGIC) for png in pictures.values())


# --- what the data allows: no business values, unmeasurable slices, the majority ----------


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Breast cancer, binary (1: benign), with ``pure``: a slice attribute that is the
    target itself, so each of its slices holds a single class."""
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 20, 21, 27, 30]]
    frame["pure"] = np.where(frame[TARGET] == 1, "benign", "malignant")
    return splits(BINARY, frame)


def test_business_null_computes_no_business_value_and_says_why(
    cancer: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    config = eval_config(params, "roc_auc").model_copy(update={"business": None})
    result = run(BINARY, cancer, config, params.tune)
    business = result.details["business"]
    assert (business["available"], business["reason"]) == (False, report.NO_BUSINESS)
    assert business["correlation"] == {
        "available": False, "reason": report.NO_BUSINESS, "spearman": None
    }  # fmt: skip
    assert not [name for name in result.metrics if name.startswith("business")]
    unavailable = result.details["unavailable"]
    assert unavailable["business_value"] == report.NO_BUSINESS
    assert unavailable["business_correlation"] == report.NO_BUSINESS
    assert "business" not in result.tables
    assert "business" not in charts.render(result.tables, result.details)
    assert result.metrics["roc_auc"] > 0.9  # the rest is evaluated as before


def test_slices_that_cannot_be_measured_are_listed_with_rows_and_reasons(
    cancer: tuple[pd.DataFrame, pd.DataFrame], params: Params
) -> None:
    base = eval_config(params, "roc_auc")
    slices = base.slices.model_copy(update={"columns": ("band", "pure"), "min_rows": 60})
    result = run(BINARY, cancer, base.model_copy(update={"slices": slices}), params.tune)
    _, test = cancer
    unmeasured = {u["slice"]: u for u in result.details["slices"]["unmeasured"]}
    assert set(unmeasured) == {"pure=benign", "pure=malignant"} | (
        {f"band={b}" for b in ("high", "low") if (test["band"] == b).sum() < 60}
    )
    malignant = unmeasured["pure=malignant"]
    assert malignant["rows"] == int((test[TARGET] == 0).sum())
    assert malignant["reason"] == "not measurable: the rows hold a single class"
    tiny = slices.model_copy(update={"min_rows": 1000})
    result = run(BINARY, cancer, base.model_copy(update={"slices": tiny}), params.tune)
    assert "slice_worst" not in result.metrics
    why = result.details["unavailable"]["slice_worst"]
    high = int((test["band"] == "high").sum())
    assert why.startswith("no slice could be measured: band=high (too small: ")
    assert f"band=high (too small: {high} rows < min_rows 1000)" in why
    assert "pure=malignant" in why
    assert result.details["unavailable"]["slice_gap"].startswith(
        "no attribute has two measured slices: band=high"
    )


def test_majority_accuracy_is_the_share_of_the_most_frequent_test_class(
    wine: tuple[pd.DataFrame, pd.DataFrame],
    wine_result: Evaluation,
    diabetes_result: Evaluation,
) -> None:
    _, test = wine
    share = test[TARGET].value_counts(normalize=True).max()
    assert wine_result.metrics["majority_accuracy"] == pytest.approx(share, abs=1e-6)
    assert "majority_accuracy" not in diabetes_result.metrics
    assert "majority_accuracy" not in diabetes_result.details["unavailable"]
