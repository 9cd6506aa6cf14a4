"""Inclusion and staleness: parity across protected groups per task, proxies, the measured
decay, and how the gate judges them (fairness thresholds, groups too small, the age limit,
business_correlation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.config import FairnessConfig, GateConfig, StalenessConfig
from mlops.errors import UsageError
from mlops.evaluation.fairness import fairness_report, protected_groups, proxies
from mlops.evaluation.report import REPORTS, fairness_numbers
from mlops.evaluation.staleness import measure_decay, stream_ages, time_ages
from mlops.release.gating import GROUPS_CHECK, age_limit, judge, markdown, report
from mlops.tasks.metrics import METRICS, Prediction

CONFIG = FairnessConfig(min_rows=4, min_positives=2, proxy_threshold=0.5, proxy_rows=1000)
# Two groups of 6: group a has 3 positives of which the model selects 3, group b has 3
# positives of which it selects 1 (and one negative).
GROUPS = pd.Series(["a"] * 6 + ["b"] * 6)
Y = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
LABEL = np.array([1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0])


def binary(label: np.ndarray) -> Prediction:
    proba = label.astype(float)
    return Prediction(label, np.column_stack([1 - proba, proba]), (0, 1))


def fairness(task: str, y: Any, prediction: Prediction, config: FairnessConfig = CONFIG) -> Any:
    return fairness_report(
        {"sex": GROUPS}, y, prediction, measure=REPORTS[task].fairness, config=config
    )


def test_binary_selection_rate_ratio_its_adjusted_ratio_and_tpr_gap() -> None:
    result = fairness("binary", Y, binary(LABEL))
    (record,) = result["attributes"]
    assert record["class"] == 1
    # Selection rates 3/6 and 2/6; actual rates both 3/6; TPR 3/3 and 1/3.
    assert record["selection_rate_ratio"] == pytest.approx(2 / 3, abs=1e-6)
    assert record["selection_rate_ratio_adjusted"] == pytest.approx(2 / 3, abs=1e-6)
    assert record["tpr_gap"] == pytest.approx(2 / 3, abs=1e-6)
    assert result["worst"]["tpr_gap"]["attribute"] == "sex"
    assert result["too_small"] == []
    fair = fairness("binary", Y, binary(Y))
    assert fair["worst"]["selection_rate_ratio"]["value"] == 1.0
    assert fair["worst"]["tpr_gap"]["value"] == 0.0


def test_multiclass_judges_every_class_and_keeps_the_worst() -> None:
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    label = y.copy()
    label[6:] = 0  # group b is always predicted class 0
    proba = np.eye(3)[label]
    result = fairness("multiclass", y, Prediction(label, proba, (0, 1, 2)), CONFIG)
    assert [r["class"] for r in result["attributes"]] == [0, 1, 2]
    # Class 1 and 2 are never selected in group b: a ratio of 0, recall gap 1.
    assert result["worst"]["selection_rate_ratio"]["value"] == 0.0
    assert result["worst"]["tpr_gap"]["value"] == 1.0


def test_regression_mean_prediction_ratio_and_relative_error_gap() -> None:
    y = np.array([10.0] * 12)
    value = np.array([10.0] * 6 + [8.0] * 6)  # group b under-predicted by 2
    result = fairness("regression", y, Prediction(value))
    assert result["worst"]["fairness_mean_ratio"]["value"] == pytest.approx(0.8)
    # MAE 0 and 2, overall 1: the gap is twice the overall error.
    assert result["worst"]["fairness_error_gap"]["value"] == pytest.approx(2.0)


def test_a_group_too_small_is_named_with_why_and_never_measured() -> None:
    strict = CONFIG.model_copy(update={"min_positives": 4})
    result = fairness("binary", Y, binary(LABEL), strict)
    assert [g["group"] for g in result["too_small"]] == ["sex=a", "sex=b"]
    assert "3 rows of the class < min_positives 4" in result["too_small"][0]["reason"]
    assert result["worst"]["tpr_gap"]["value"] is None
    numbers = fairness_numbers(result)
    assert numbers["fairness_groups_too_small"] == (2.0, "")
    assert "sex=a (3 rows of the class < min_positives 4)" in numbers["tpr_gap"][1]


def test_a_protected_attribute_missing_from_the_data_is_one_line() -> None:
    with pytest.raises(UsageError, match=r"validate.protected: no column 'race' in the test"):
        protected_groups(pd.DataFrame({"sex": ["a"]}), ["sex", "race"])


def test_a_feature_that_predicts_the_attribute_is_a_proxy() -> None:
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], 400)
    frame = pd.DataFrame(
        {
            "sex": sex,
            "relationship": np.where(sex == "F", "Wife", "Husband"),  # a copy of sex
            "noise": rng.normal(size=400),
        }
    )
    found = proxies(frame, ["relationship", "noise"], ["sex"], config=CONFIG, seed=0)
    assert [(p["attribute"], p["feature"]) for p in found["proxies"]] == [("sex", "relationship")]
    assert found["scores"][0]["nmi"] == 1.0
    again = proxies(frame, ["relationship", "noise"], ["sex"], config=CONFIG, seed=0)
    assert again == found  # seeded


# --- staleness ---------------------------------------------------------------------------

STALE = StalenessConfig(time_column=None, stream=None, window_days=30.0, windows=4, confidence=0.95)


def decaying(rows: int, flip_growth: float) -> tuple[np.ndarray, Prediction]:
    """Labels the model gets right, with a share of wrong answers growing along the rows."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, rows)
    wrong = rng.random(rows) < flip_growth * np.arange(rows) / rows
    proba = np.where(wrong, 1 - y, y) * 0.8 + 0.1
    return y, Prediction((proba >= 0.5).astype(int), np.column_stack([1 - proba, proba]), (0, 1))


def test_a_model_that_gets_worse_with_age_shows_a_decay() -> None:
    y, prediction = decaying(2000, 0.6)
    ages = stream_ages(len(y), STALE.windows, STALE.window_days)
    assert list(np.unique(ages)) == [15.0, 45.0, 75.0, 105.0]
    result = measure_decay(
        y, prediction, ages, metric=METRICS["roc_auc"], config=STALE, source="test"
    )
    assert [w["age_days"] for w in result["windows"]] == [15.0, 45.0, 75.0, 105.0]
    fit = result["fit"]
    assert fit["decay_per_day"] > 0
    assert fit["decay_bound_per_day"] > fit["decay_per_day"]
    steady = measure_decay(
        *decaying(2000, 0.0), ages, metric=METRICS["roc_auc"], config=STALE, source="test"
    )
    assert steady["fit"]["decay_per_day"] == pytest.approx(0.0, abs=1e-9)


def test_a_time_column_gives_ages_from_the_training_data_s_latest_time() -> None:
    train = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-11"])})
    test = pd.DataFrame({"when": pd.to_datetime(["2024-01-21", "2024-01-06"])})
    assert list(time_ages(test, train, "when")) == [10.0, -5.0]
    with pytest.raises(UsageError, match=r"evaluate.staleness.time_column: no column 'at'"):
        time_ages(test, train, "at")


# --- the gate ----------------------------------------------------------------------------


def gate(**update: Any) -> GateConfig:
    base = GateConfig(
        minimum={"roc_auc": 0.85, "selection_rate_ratio_adjusted": 0.8},
        maximum={"tpr_gap": 0.1},
        baseline_margin={},
        max_degradation={"roc_auc": 0.01},
        max_age_days="measured",
        unmeasured_age_days=90.0,
        unmeasurable_slices="fail",
        unmeasurable_groups="fail",
    )
    return base.model_copy(update=update)


SMALL = {
    "protected": ["race"],
    "worst": {"tpr_gap": {"value": 0.05, "attribute": "sex", "class": 1}},
    "too_small": [{"group": "race=Other", "class": 1, "rows": 45, "reason": "45 rows < 100"}],
    "attributes": [],
}


@pytest.mark.parametrize("policy", ["fail", "pass"])
def test_a_group_too_small_is_named_and_judged_by_the_policy(policy: str) -> None:
    metrics = {"roc_auc": 0.9, "tpr_gap": 0.05, "selection_rate_ratio_adjusted": 0.9}
    checks = {
        c.name: c
        for c in judge(metrics, "roc_auc", None, gate(unmeasurable_groups=policy), fairness=SMALL)
    }
    small = checks[GROUPS_CHECK]
    assert (small.value, small.verdict) == (1.0, policy)
    assert small.threshold == (0.0 if policy == "fail" else None)  # no "1 <= 0: pass" line
    assert "race=Other (45 rows < 100)" in small.note
    assert checks["maximum.tpr_gap"].verdict == "pass"
    assert checks["maximum.tpr_gap"].note.startswith("worst: sex, class 1")
    # A fairness number no group could measure: the same policy decides.
    config = gate(unmeasurable_groups=policy)
    unmeasured = {c.name: c for c in judge({"roc_auc": 0.9}, "roc_auc", None, config)}
    assert unmeasured["maximum.tpr_gap"].verdict == policy
    assert "gate.unmeasurable_groups" in unmeasured["maximum.tpr_gap"].note
    failing = {c.name: c for c in judge(metrics | {"tpr_gap": 0.3}, "roc_auc", None, gate())}
    assert failing["maximum.tpr_gap"].verdict == "fail"


def test_without_a_fairness_threshold_the_groups_are_not_judged() -> None:
    config = gate(minimum={"roc_auc": 0.85}, maximum={})
    checks = {c.name: c for c in judge({"roc_auc": 0.9}, "roc_auc", None, config, fairness=SMALL)}
    assert GROUPS_CHECK not in checks


def test_business_correlation_is_gated_and_off_when_not_measured() -> None:
    config = gate(minimum={"business_correlation": 0.0}, maximum={})
    (check, *_) = judge({"business_correlation": -0.4}, "roc_auc", None, config)
    assert (check.name, check.verdict) == ("minimum.business_correlation", "fail")
    off = {"business_correlation": "evaluate.business.correlation_trials is 0"}
    (check, *_) = judge({}, "roc_auc", None, config, off=off)
    assert (check.verdict, check.note) == ("off", off["business_correlation"])


MEASURED = {
    "available": True,
    "source": "the stream",
    "confidence": 0.95,
    "windows": [{}] * 8,
    "fit": {"decay_per_day": 0.0001, "decay_bound_per_day": 0.0002, "at_age_0": 0.9},
}


def test_the_age_limit_is_derived_from_the_measured_decay() -> None:
    limit = age_limit(gate(), MEASURED, "roc_auc")
    # The smaller tolerance: max_degradation 0.01 (the minimum leaves 0.05), at 0.0002 a day.
    assert limit["days"] == 50.0
    assert limit["source"].startswith("measured: roc_auc falls by 0.01 in 50 days")
    tighter = age_limit(gate(minimum={"roc_auc": 0.895}), MEASURED, "roc_auc")
    assert tighter["days"] == 25.0  # 0.005 of room above the minimum


def test_the_age_limit_falls_back_and_says_why_when_nothing_was_measured() -> None:
    none = age_limit(gate(), {"available": False, "reason": "no time order"}, "roc_auc")
    assert none == {"days": 90.0, "source": "gate.unmeasured_age_days (90.0): no time order"}
    improving = MEASURED | {"fit": {**MEASURED["fit"], "decay_bound_per_day": -0.001}}
    assert "no decay of roc_auc" in age_limit(gate(), improving, "roc_auc")["source"]
    configured = age_limit(gate(max_age_days=30.0), MEASURED, "roc_auc")
    assert configured == {
        "days": 30.0,
        "source": "gate.max_age_days; measured decay 0.0001 per day",
    }


def test_gate_md_says_where_the_age_limit_came_from_and_names_small_groups() -> None:
    config = gate()
    checks = judge({"roc_auc": 0.9, "tpr_gap": 0.05}, "roc_auc", None, config, fairness=SMALL)
    limit = age_limit(config, MEASURED, "roc_auc")
    result = report(checks, "roc_auc", {}, None, limit=limit)
    assert result["age_limit"] == limit
    text = markdown(result, None, SMALL | {"proxies": {"threshold": 0.1, "proxies": []}})
    assert "Age limit at promotion (`mlops gate --check`): 50 days, from measured" in text
    assert "- race=Other: 45 rows < 100" in text
