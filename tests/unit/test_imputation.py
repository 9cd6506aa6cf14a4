"""The imputation plan: decisions, strategies, statistics, auto, and the serving report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.config import ImputeConfig
from mlops.errors import CheckFailed, UsageError
from mlops.features.imputation import (
    FALLBACK_SOURCE,
    MISSING_CATEGORY,
    ImputationPlan,
    Quality,
    as_missing,
    cv_scorer,
    describe_counts,
    imputation_counts,
    mask_values,
    plan_imputation,
    read_quality,
    statistic,
)
from mlops.features.pipeline import build_imputer

NAN = np.nan
BASE = {
    "policy": "impute",
    "numeric": "median",
    "categorical": "most_frequent",
    "overrides": {},
    "indicators": False,
    "knn": {"n_neighbors": 3},
    "auto": {"family": "logistic_regression", "cv_folds": 2, "max_rows": 200},
}


def plan_seeded(*args: Any, **kwargs: Any) -> ImputationPlan:
    return plan_imputation(*args, seed=0, **kwargs)


def config(**changes: Any) -> ImputeConfig:
    return ImputeConfig.model_validate({**BASE, **changes})


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, NAN, 40.0, 50.0, NAN, 30.0],
            "hours": [40.0, 38.0, 45.0, 50.0, 20.0, 60.0],
            "job": pd.Series(["a", "b", None, "b", "a", "b"], dtype="str"),
            "sex": pd.Series(["f", "m", "f", "m", "f", "m"], dtype="str"),
            "y": [0, 1, 0, 1, 0, 1],
        }
    )


def fallback(train: pd.DataFrame) -> Quality:
    return read_quality({"passed": True}, list(train.columns), "y")


def report(failing: list[str], features: list[str] | None = None) -> dict[str, Any]:
    names = features or ["age", "hours", "job", "sex"]
    entry = {"score": 0.4, "missing_rate": 0.33, "reasons": ["33% missing"], "passed": False}
    good = {"score": 1.0, "missing_rate": 0.0, "reasons": [], "passed": True}
    return {
        "passed": True,
        "features": names,
        "quality": {
            "threshold": 0.8,
            "features": {n: dict(entry if n in failing else good) for n in names},
            "failing": failing,
        },
    }


def by_name(plan: ImputationPlan) -> dict[str, Any]:
    return {f.name: f for f in plan.features}


# --- what the data tests found ------------------------------------------------------------


def test_without_a_quality_report_every_column_but_the_target_is_a_feature(
    train: pd.DataFrame,
) -> None:
    quality = fallback(train)
    assert quality.features == ("age", "hours", "job", "sex")
    assert quality.failing == frozenset()
    assert quality.threshold is None
    assert quality.source == FALLBACK_SOURCE


def test_the_quality_report_names_features_and_failing_ones(train: pd.DataFrame) -> None:
    quality = read_quality(report(["age"], ["age", "job"]), list(train.columns), "y")
    assert quality.features == ("age", "job")
    assert quality.failing == {"age"}
    assert quality.threshold == 0.8
    assert quality.per_feature["age"]["score"] == 0.4


def test_a_report_naming_an_unknown_column_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match=r"features \['salary'\] are not feature columns"):
        read_quality(report([], ["age", "salary"]), list(train.columns), "y")
    with pytest.raises(UsageError, match=r"features \['y'\]"):
        read_quality(report([], ["age", "y"]), list(train.columns), "y")


def test_a_report_that_is_not_an_object_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match=r"^reports/validation.json: expected a JSON object$"):
        read_quality([], list(train.columns), "y")  # type: ignore[arg-type]


def test_a_failed_validation_stops_planning(train: pd.DataFrame) -> None:
    with pytest.raises(CheckFailed, match="failed validation"):
        read_quality({"passed": False}, list(train.columns), "y")


# --- decisions ------------------------------------------------------------------------------


def test_decisions_without_failing_features(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", fallback(train), config())
    features = by_name(plan)
    assert [f.name for f in plan.features] == ["age", "hours", "job", "sex"]
    assert features["age"].decision == "impute"
    assert features["age"].reason == "33.3% missing in training"
    assert features["hours"].decision == "keep"
    assert "fitted for gaps in serving" in features["hours"].reason
    assert features["job"].missing_rate == pytest.approx(1 / 6, abs=1e-6)
    assert plan.names() == ["age", "hours", "job", "sex"]
    assert plan.names("categorical") == ["job", "sex"]


def test_columns_the_report_leaves_out_are_dropped(train: pd.DataFrame) -> None:
    quality = read_quality(report([], ["age", "hours", "job"]), list(train.columns), "y")
    plan = plan_seeded(train, "y", quality, config())
    assert by_name(plan)["sex"].decision == "drop"
    assert by_name(plan)["sex"].reason == (
        "not among the model's features in reports/validation.json"
    )
    assert plan.names() == ["age", "hours", "job"]


def test_the_report_says_why_a_column_is_left_out(train: pd.DataFrame) -> None:
    findings = report([], ["age", "job"]) | {
        "protected": ["sex"],
        "dropped": {"privacy": ["hours"], "importance": []},
    }
    plan = plan_seeded(train, "y", read_quality(findings, list(train.columns), "y"), config())
    assert by_name(plan)["sex"].reason == "protected attribute (validate.protected)"
    assert by_name(plan)["hours"].reason == "dropped by validate's privacy policy"


@pytest.mark.parametrize(
    ("policy", "decision", "used"),
    [("impute", "impute", True), ("drop", "drop", False), ("stop", "fail", False)],
)
def test_the_policy_decides_failing_features(
    train: pd.DataFrame, policy: str, decision: str, used: bool
) -> None:
    quality = read_quality(report(["age"]), list(train.columns), "y")
    plan = plan_seeded(train, "y", quality, config(policy=policy))
    age = by_name(plan)["age"]
    assert age.decision == decision
    assert "quality 0.4 below the QA threshold 0.8 (33% missing)" in age.reason
    assert ("age" in plan.names()) is used
    assert age.quality == report(["age"])["quality"]["features"]["age"]
    assert (age.strategy == "median") is used
    assert "age" in plan.decided(decision)  # type: ignore[arg-type]


def test_a_failing_feature_without_gaps_is_kept_when_imputing(train: pd.DataFrame) -> None:
    quality = read_quality(report(["hours"]), list(train.columns), "y")
    hours = by_name(plan_seeded(train, "y", quality, config()))["hours"]
    assert hours.decision == "keep"
    assert "below the QA threshold" in hours.reason


# --- strategies and statistics --------------------------------------------------------------


def test_statistics_by_strategy(train: pd.DataFrame) -> None:
    plan = plan_seeded(
        train, "y", fallback(train), config(numeric="mean", overrides={"hours": "median"})
    )
    features = by_name(plan)
    assert features["age"].statistic == pytest.approx(35.0)
    assert features["hours"].statistic == pytest.approx(42.5)
    assert features["job"].statistic == "b"
    missing = plan_seeded(train, "y", fallback(train), config(categorical="missing_category"))
    assert by_name(missing)["job"].statistic == MISSING_CATEGORY


def test_most_frequent_ties_go_to_the_smallest_value() -> None:
    column = pd.Series(["b", "a", "b", "a", None], dtype="str")
    assert statistic(column, "most_frequent") == "a"


def test_knn_records_no_single_statistic(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", fallback(train), config(numeric="knn"))
    assert by_name(plan)["age"].strategy == "knn"
    assert by_name(plan)["age"].statistic is None
    assert plan.n_neighbors == 3


def test_statistics_ignore_rows_outside_the_training_frame(train: pd.DataFrame) -> None:
    more = pd.concat([train, train.assign(age=1000.0)], ignore_index=True)
    before = by_name(plan_seeded(train, "y", fallback(train), config()))["age"].statistic
    after = by_name(plan_seeded(more, "y", fallback(more), config()))["age"].statistic
    assert before == 35.0
    assert after != before


def test_indicators_only_for_features_missing_in_training(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", fallback(train), config(indicators=True))
    assert [f.name for f in plan.features if f.indicator] == ["age", "job"]


def test_overrides_win_over_the_type_default(train: pd.DataFrame) -> None:
    overrides = {"age": "knn", "job": "missing_category"}
    features = by_name(plan_seeded(train, "y", fallback(train), config(overrides=overrides)))
    assert features["age"].strategy == "knn"
    assert features["hours"].strategy == "median"
    assert features["job"].strategy == "missing_category"
    assert features["sex"].strategy == "most_frequent"


# --- bad input ----------------------------------------------------------------------------------


def test_an_override_naming_an_unknown_column(train: pd.DataFrame) -> None:
    with pytest.raises(UsageError) as error:
        plan_seeded(train, "y", fallback(train), config(overrides={"agee": "mean"}))
    assert str(error.value) == (
        "params.yaml impute.overrides names 'agee', which is not a model feature "
        "(features: age, hours, job, sex)"
    )


def test_knn_for_a_categorical_feature(train: pd.DataFrame) -> None:
    with pytest.raises(UsageError) as error:
        plan_seeded(train, "y", fallback(train), config(overrides={"job": "knn"}))
    assert str(error.value) == (
        "params.yaml impute.overrides.job: knn cannot impute a categorical feature "
        "(use one of: most_frequent, missing_category)"
    )


def test_a_numeric_strategy_for_a_categorical_feature(train: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match="median cannot impute a categorical feature"):
        plan_seeded(train, "y", fallback(train), config(overrides={"job": "median"}))
    with pytest.raises(UsageError, match="most_frequent cannot impute a numeric feature"):
        plan_seeded(train, "y", fallback(train), config(overrides={"age": "most_frequent"}))


def test_a_feature_missing_in_every_training_row(train: pd.DataFrame) -> None:
    empty = train.assign(age=NAN)
    with pytest.raises(CheckFailed, match="feature 'age' is missing in every training row"):
        plan_seeded(empty, "y", fallback(empty), config())


def test_an_empty_feature_can_be_dropped_by_policy(train: pd.DataFrame) -> None:
    empty = train.assign(age=NAN)
    quality = read_quality(report(["age"]), list(empty.columns), "y")
    plan = plan_seeded(empty, "y", quality, config(policy="drop"))
    assert by_name(plan)["age"].decision == "drop"


# --- auto -----------------------------------------------------------------------------------


def fake_scorer(scores: dict[str, float]) -> Any:
    """Scores a plan by the strategy of its 'age' and 'job' features."""
    calls: list[tuple[str | None, str | None]] = []

    def score(plan: ImputationPlan) -> float:
        features = by_name(plan)
        calls.append((features["age"].strategy, features["job"].strategy))
        return scores.get(features["age"].strategy, 0.0) + scores.get(features["job"].strategy, 0.0)

    score.calls = calls  # type: ignore[attr-defined]
    return score


SCORED_AS = {"metric": "roc_auc", "family": "logistic_regression", "rows": 6, "folds": 2}


def test_auto_picks_the_best_scoring_strategy_per_group(train: pd.DataFrame) -> None:
    score = fake_scorer({"mean": 0.2, "knn": 0.3, "median": 0.1, "missing_category": 0.5})
    plan = plan_seeded(
        train,
        "y",
        fallback(train),
        config(numeric="auto", categorical="auto"),
        score=score,
        scored_as=SCORED_AS,
    )
    assert by_name(plan)["age"].strategy == "knn"
    assert by_name(plan)["hours"].strategy == "knn"
    assert by_name(plan)["job"].strategy == "missing_category"
    numeric, categorical = plan.comparisons
    assert numeric.group == "numeric"
    assert numeric.scores == {"median": 0.1, "mean": 0.2, "knn": 0.3}
    assert numeric.chosen == "knn"
    assert numeric.metric == "roc_auc"
    assert (numeric.rows, numeric.folds) == (6, 2)
    assert categorical.chosen == "missing_category"
    # the categorical group is compared with the numeric winner in place; the plan both
    # groups share (knn, most_frequent) is scored once
    assert score.calls == [
        ("median", "most_frequent"),
        ("mean", "most_frequent"),
        ("knn", "most_frequent"),
        ("knn", "missing_category"),
    ]


def test_auto_ties_keep_the_simplest_strategy(train: pd.DataFrame) -> None:
    plan = plan_seeded(
        train,
        "y",
        fallback(train),
        config(numeric="auto"),
        score=lambda _: 0.5,
        scored_as=SCORED_AS,
    )
    assert by_name(plan)["age"].strategy == "median"


def test_auto_picks_by_the_metric_s_direction(train: pd.DataFrame) -> None:
    # An error (rmse, log loss) is best where it is lowest; the record keeps its values.
    score = fake_scorer({"median": 3.0, "mean": 1.0, "knn": 2.0})
    scored_as = {**SCORED_AS, "metric": "rmse", "family": "ridge"}
    plan = plan_seeded(
        train, "y", fallback(train), config(numeric="auto"), score=score, scored_as=scored_as
    )
    assert by_name(plan)["age"].strategy == "mean"
    assert plan.comparisons[0].scores == {"median": 3.0, "mean": 1.0, "knn": 2.0}


def test_auto_needs_to_know_its_metric(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="needs a scorer and its metric"):
        plan_seeded(train, "y", fallback(train), config(numeric="auto"), score=lambda _: 0.5)


def test_auto_without_gaps_keeps_the_simplest_without_scoring(train: pd.DataFrame) -> None:
    complete = train.dropna()
    score = fake_scorer({})
    plan = plan_seeded(
        complete, "y", fallback(complete), config(numeric="auto", categorical="auto"), score=score
    )
    assert [c.chosen for c in plan.comparisons] == ["median", "most_frequent"]
    assert all(c.scores == {} for c in plan.comparisons)
    assert score.calls == []


def test_auto_leaves_overridden_features_alone(train: pd.DataFrame) -> None:
    score = fake_scorer({"mean": 1.0})
    plan = plan_seeded(
        train, "y", fallback(train), config(numeric="auto", overrides={"age": "knn"}), score=score
    )
    assert by_name(plan)["age"].strategy == "knn"
    # only 'hours' is in the group and it has no gaps: nothing to compare
    assert plan.comparisons[0].scores == {}


def test_cv_scorer_is_seeded_and_samples_at_most_max_rows(adult_sample: pd.DataFrame) -> None:
    quality = read_quality({}, list(adult_sample.columns), "income")
    plan = plan_seeded(adult_sample, "income", quality, config())
    from mlops.features.pipeline import build_pipeline

    def make(p: ImputationPlan) -> Any:
        return build_pipeline(p, "logistic_regression", {"max_iter": 500}, 0, "binary")

    first, rows = cv_scorer(
        adult_sample, "income", make, task="binary", metric="roc_auc", folds=2, max_rows=600, seed=1
    )
    again, _ = cv_scorer(
        adult_sample, "income", make, task="binary", metric="roc_auc", folds=2, max_rows=600, seed=1
    )
    assert rows == 600
    assert 0.7 < first(plan) == again(plan) <= 1.0


# --- the plan as JSON ---------------------------------------------------------------------------


def test_the_plan_round_trips_through_its_dict(train: pd.DataFrame) -> None:
    quality = read_quality(report(["job"]), list(train.columns), "y")
    plan = plan_imputation(
        train,
        "y",
        quality,
        config(numeric="auto", indicators=True),
        seed=7,
        score=lambda _: 0.5,
        scored_as=SCORED_AS,
    )
    data = plan.to_dict()
    assert data["summary"] == {
        "keep": ["hours", "sex"],
        "impute": ["age", "job"],
        "drop": [],
        "fail": [],
    }
    assert data["threshold"] == 0.8
    assert data["knn"] == {"n_neighbors": 3, "seed": 7}
    assert ImputationPlan.from_dict(data) == plan


def test_a_broken_plan_is_one_clear_error() -> None:
    expected = r"^models/imputation.json: not an imputation plan .*rerun `mlops impute`$"
    with pytest.raises(UsageError, match=expected):
        ImputationPlan.from_dict({"target": "y"})


# --- serving: what a batch needs ----------------------------------------------------------------


def test_imputation_counts_per_feature(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", fallback(train), config())
    batch = pd.DataFrame(
        {
            "age": [NAN] * 9 + [30.0],
            "hours": [40.0] * 10,
            "job": pd.Series(["a"] * 8 + [None, None], dtype="str"),
        }
    )
    counts = imputation_counts(batch, plan)
    assert counts["rows"] == 10
    assert counts["imputed_features"] == 3
    assert counts["features"]["age"] == {
        "imputed": 9,
        "rate": 0.9,
        "strategy": "median",
        "absent": False,
    }
    assert counts["features"]["job"]["imputed"] == 2
    assert counts["features"]["sex"] == {
        "imputed": 10,
        "rate": 1.0,
        "strategy": "most_frequent",
        "absent": True,
    }
    assert "hours" not in counts["features"]
    assert describe_counts(counts) == (
        "3 feature(s) imputed in 10 rows: age 90.0% (median), job 20.0% (most_frequent), "
        "sex 100.0% (most_frequent)"
    )


def test_a_complete_or_empty_batch_needs_no_imputation(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", fallback(train), config())
    complete = train.dropna().drop(columns="y")
    assert imputation_counts(complete, plan)["features"] == {}
    assert imputation_counts(complete.head(0), plan) == {
        "rows": 0,
        "imputed_features": 0,
        "features": {},
    }
    assert describe_counts(imputation_counts(complete, plan)).endswith("rows: none")


def test_auto_scores_nothing_when_the_run_stops(train: pd.DataFrame) -> None:
    score = fake_scorer({"mean": 1.0})
    quality = read_quality(report(["job"]), list(train.columns), "y")
    plan = plan_seeded(train, "y", quality, config(policy="stop", numeric="auto"), score=score)
    assert plan.decided("fail") == ["job"]
    assert plan.comparisons[0].reason.startswith("not compared")
    assert score.calls == []


# --- sentinels: values that mean "unknown" ------------------------------------------------------


def with_sentinel(train: pd.DataFrame) -> Quality:
    findings = report([])
    findings["quality"]["features"]["hours"]["sentinels"] = [99.0]
    findings["quality"]["features"]["job"]["sentinels"] = ["?"]
    return read_quality(findings, list(train.columns), "y")


def test_sentinels_count_as_missing_and_never_shape_a_statistic(train: pd.DataFrame) -> None:
    coded = train.assign(hours=[40.0, 99.0, 45.0, 50.0, 99.0, 60.0])
    plan = plan_seeded(coded, "y", with_sentinel(coded), config(numeric="mean"))
    hours = by_name(plan)["hours"]
    assert hours.decision == "impute"
    assert hours.missing_rate == pytest.approx(1 / 3, abs=1e-6)
    assert hours.statistic == pytest.approx(48.75)
    assert hours.sentinels == (99.0,)
    assert "(sentinels 99.0 count as missing)" in hours.reason
    assert plan.sentinels() == {"hours": [99.0], "job": ["?"]}
    assert by_name(plan)["age"].sentinels == ()


def test_a_feature_of_nothing_but_sentinels_cannot_be_imputed(train: pd.DataFrame) -> None:
    coded = train.assign(hours=99.0)
    with pytest.raises(CheckFailed, match="feature 'hours' is missing in every training row"):
        plan_seeded(coded, "y", with_sentinel(coded), config())


def test_as_missing_blanks_only_the_listed_values_of_each_column() -> None:
    frame = pd.DataFrame(
        {"a": [1.0, 99.0, NAN], "b": pd.Series(["?", "x", None], dtype="str"), "c": [99.0] * 3}
    )
    out = as_missing(frame, {"a": [99.0], "b": ["?"]})
    assert out["a"].isna().tolist() == [False, True, True]
    assert out["b"].isna().tolist() == [True, False, True]
    assert out["c"].tolist() == [99.0] * 3
    assert frame["a"].tolist()[1] == 99.0  # the input is not changed


def test_sentinels_in_a_batch_count_as_imputed(train: pd.DataFrame) -> None:
    plan = plan_seeded(train, "y", with_sentinel(train), config())
    batch = train.drop(columns="y").assign(hours=[99.0, 40.0, 99.0, 40.0, 40.0, 40.0])
    assert imputation_counts(batch, plan)["features"]["hours"]["imputed"] == 2


def test_the_imputer_reads_its_own_columns_of_a_wider_frame(train: pd.DataFrame) -> None:
    """A batch with more columns (a protected attribute, the label) imputes as the plan's
    columns alone do, sentinels and all, as scikit-learn's ColumnTransformer reads it."""
    plan = plan_seeded(train, "y", with_sentinel(train), config())
    imputer = build_imputer(plan).set_output(transform="pandas").fit(train[plan.names()])
    wide = train.assign(hours=[99.0, 40.0, 99.0, 40.0, 40.0, 40.0], extra="x")
    narrow = wide[plan.names()]
    pd.testing.assert_frame_equal(imputer.transform(wide), imputer.transform(narrow))
    assert imputer.transform(wide)["hours"].tolist()[0] != 99.0


# --- simulated gaps ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["mcar", "mnar"])
def test_mask_values_blanks_about_the_rate_reproducibly(mechanism: str) -> None:
    frame = pd.DataFrame({"x": np.arange(10_000, dtype=float), "y": np.ones(10_000)})
    masked = mask_values(frame, ["x"], 0.3, mechanism, seed=5)  # type: ignore[arg-type]
    assert masked["x"].isna().mean() == pytest.approx(0.3, abs=0.02)
    assert masked["y"].notna().all()
    assert frame["x"].notna().all()  # the input is not changed
    again = mask_values(frame, ["x"], 0.3, mechanism, seed=5)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(masked, again)
    gone = frame["x"][masked["x"].isna()]
    if mechanism == "mnar":  # large values go missing most often
        assert gone.mean() > frame["x"].mean() * 1.2
    else:
        assert gone.mean() == pytest.approx(frame["x"].mean(), rel=0.05)
