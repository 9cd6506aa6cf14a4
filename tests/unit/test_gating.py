"""The gate's pure logic: checks, directions, production manifest, staleness, reports,
for every task."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from mlops.config import GateConfig, Params, parse_params
from mlops.errors import UsageError
from mlops.release.gating import (
    Check,
    absolute_checks,
    baseline_checks,
    change_checks,
    check_config,
    higher_is_better,
    imbalance_advice,
    judge,
    markdown,
    parse_metrics,
    report,
    staleness_check,
    with_advice,
)
from mlops.release.registry import Manifest
from mlops.stages.gate import own_baseline
from mlops.tasks.metrics import TASK_NAMES, TaskName, report_names
from mlops.tasks.task import get_task
from tests.conftest import ROOT

NOW = datetime(2026, 6, 1, tzinfo=UTC)
METRICS = {
    "roc_auc": 0.90,
    "pr_auc": 0.75,
    "log_loss": 0.30,
    "ece": 0.02,
    "overfit_gap": 0.01,
    "baseline_majority": 0.5,
    "baseline_logistic": 0.88,
    "business_threshold": 0.2,
}


def gate(**update: Any) -> GateConfig:
    base = GateConfig(
        minimum={"roc_auc": 0.85},
        maximum={"log_loss": 0.35},
        baseline_margin={"majority": 0.2, "logistic": 0.01},
        max_degradation={"roc_auc": 0.01, "log_loss": 0.02},
        max_age_days=30.0,
        unmeasured_age_days=90.0,
        unmeasurable_slices="fail",
        unmeasurable_groups="fail",
    )
    return base.model_copy(update=update)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_gate_metric_of_every_task_has_a_known_direction_or_none(task: str) -> None:
    target = get_task(task).default_metric
    for name in report_names(get_task(task).name, get_task(task).baselines):
        assert higher_is_better(name, target) in (True, False, None), name


def test_directions_come_from_the_registry_and_the_target_metric() -> None:
    assert higher_is_better("slice_worst", "log_loss") is False
    assert higher_is_better("slice_worst", "roc_auc") is True
    assert higher_is_better("baseline_mean", "rmse") is False
    assert higher_is_better("baseline_linear", "r2") is True
    assert higher_is_better("rmse", "r2") is False
    assert higher_is_better("business_threshold", "roc_auc") is None
    with pytest.raises(UsageError, match="'auc' is not a number evaluate writes"):
        higher_is_better("auc", "roc_auc")


def test_absolute_checks_pass_fail_and_missing() -> None:
    config = gate(minimum={"roc_auc": 0.95, "pr_auc": 0.7, "slice_worst": 0.8})
    checks = by_name(absolute_checks(METRICS, config))
    assert checks["minimum.roc_auc"].verdict == "fail"
    assert checks["minimum.pr_auc"].verdict == "pass"
    assert checks["maximum.log_loss"] == Check(
        "maximum.log_loss", "maximum", 0.30, "<=", 0.35, "pass"
    )
    missing = checks["minimum.slice_worst"]
    assert (missing.verdict, missing.value) == ("fail", None)
    assert "reports/metrics.json has no slice_worst" in missing.note


def test_an_ece_bound_below_chance_is_raised_to_it_and_says_so() -> None:
    """maximum.ece 0.1 on a test split where a perfectly calibrated model scores up to
    0.13 by chance is judged at 0.13; a bound above the noise is judged as written."""
    config = gate(minimum={}, maximum={"ece": 0.1})
    small = METRICS | {"ece": 0.122, "ece_noise": 0.13}
    raised = by_name(absolute_checks(small, config))["maximum.ece"]
    assert (raised.verdict, raised.threshold) == ("pass", 0.13)
    assert raised.note.startswith("bound 0.1 raised to 0.13 (ece_noise in reports/metrics.json)")
    beyond = by_name(absolute_checks(small | {"ece": 0.14}, config))["maximum.ece"]
    assert (beyond.verdict, beyond.threshold) == ("fail", 0.13)
    large = METRICS | {"ece": 0.122, "ece_noise": 0.02}
    assert by_name(absolute_checks(large, config))["maximum.ece"] == Check(
        "maximum.ece", "maximum", 0.122, "<=", 0.1, "fail"
    )
    # Without a noise figure (an older metrics file), the bound is the bound.
    older = by_name(absolute_checks(METRICS | {"ece": 0.122}, config))["maximum.ece"]
    assert (older.verdict, older.threshold) == ("fail", 0.1)
    # A minimum is never widened by a noise figure, and other numbers have none.
    assert (
        by_name(absolute_checks(small, gate(minimum={"ece": 0.125}, maximum={})))[
            "minimum.ece"
        ].threshold
        == 0.125
    )


def test_a_value_equal_to_its_threshold_passes() -> None:
    checks = absolute_checks({"roc_auc": 0.85, "log_loss": 0.35}, gate())
    assert [c.verdict for c in checks] == ["pass", "pass"]


def test_baselines_must_be_beaten_by_their_margin() -> None:
    checks = by_name(baseline_checks(METRICS, "roc_auc", gate()))
    assert checks["baseline_margin.majority"].verdict == "pass"
    assert checks["baseline_margin.majority"].threshold == 0.7
    logistic = checks["baseline_margin.logistic"]
    assert (logistic.verdict, logistic.threshold) == ("pass", 0.89)
    margins = {"majority": 0.2, "logistic": 0.05}
    tight = by_name(baseline_checks(METRICS, "roc_auc", gate(baseline_margin=margins)))
    assert tight["baseline_margin.logistic"].verdict == "fail"


def test_baselines_for_a_lower_is_better_target() -> None:
    metrics = {"log_loss": 0.30, "baseline_majority": 0.55, "baseline_logistic": 0.31}
    checks = by_name(baseline_checks(metrics, "log_loss", gate()))
    assert checks["baseline_margin.majority"].operator == "<="
    assert checks["baseline_margin.majority"].verdict == "pass"
    assert checks["baseline_margin.logistic"].threshold == pytest.approx(0.30)
    assert checks["baseline_margin.logistic"].verdict == "pass"


def test_a_shortfall_within_the_test_splits_noise_passes_and_says_so() -> None:
    """0.885 is 0.005 short of logistic 0.88 + 0.01; chance alone can show 0.008 on this
    test split, so it is no evidence against the model. 0.87 is 0.02 short: it fails."""
    noisy = METRICS | {"roc_auc": 0.885, "margin_noise_logistic": 0.008}
    passing = by_name(baseline_checks(noisy, "roc_auc", gate()))["baseline_margin.logistic"]
    assert (passing.verdict, passing.threshold) == ("pass", pytest.approx(0.882))
    assert "bound eased by 0.008 (margin_noise_logistic in reports/metrics.json)" in (passing.note)
    short = by_name(baseline_checks(noisy | {"roc_auc": 0.87}, "roc_auc", gate()))
    assert short["baseline_margin.logistic"].verdict == "fail"
    # Without the noise measured, the bound is as written.
    plain = by_name(baseline_checks(METRICS | {"roc_auc": 0.885}, "roc_auc", gate()))
    assert (
        plain["baseline_margin.logistic"].verdict,
        plain["baseline_margin.logistic"].threshold,
    ) == (
        "fail",
        0.89,
    )


def test_a_bound_the_model_meets_is_not_lowered_by_the_noise() -> None:
    check = by_name(baseline_checks(METRICS | {"margin_noise_logistic": 0.008}, "roc_auc", gate()))[
        "baseline_margin.logistic"
    ]
    assert (check.verdict, check.threshold) == ("pass", 0.89)
    assert "lowered" not in check.note


def test_for_a_loss_the_noise_raises_the_bound() -> None:
    metrics = {"log_loss": 0.305, "baseline_logistic": 0.31, "margin_noise_logistic": 0.006}
    check = by_name(baseline_checks(metrics, "log_loss", gate()))["baseline_margin.logistic"]
    assert (check.operator, check.verdict) == ("<=", "pass")
    assert check.threshold == pytest.approx(0.306)


def test_only_the_baselines_params_name_are_checked() -> None:
    checks = baseline_checks(METRICS, "roc_auc", gate(baseline_margin={"logistic": 0.01}))
    assert [c.name for c in checks] == ["baseline_margin.logistic"]


# A regression model's reports/metrics.json: rmse is the target, and lower is better.
REGRESSION_METRICS = {
    "rmse": 50.0,
    "mae": 40.0,
    "r2": 0.45,
    "overfit_gap": 20.0,
    "baseline_mean": 77.0,
    "baseline_linear": 55.0,
    "business_value": -40.0,
}


def regression_gate(**update: Any) -> GateConfig:
    return gate(
        minimum={"r2": 0.4},
        maximum={"rmse": 60.0},
        baseline_margin={"mean": 10.0, "linear": 2.0},
        max_degradation={"rmse": 1.0, "r2": 0.02},
    ).model_copy(update=update)


def test_a_regression_metrics_file_is_judged_with_rmse_minimised() -> None:
    production = manifest("v1.0.0", "abc", {"rmse": 49.5, "r2": 0.46})
    checks = by_name(judge(REGRESSION_METRICS, "rmse", production, regression_gate()))
    assert checks["maximum.rmse"].verdict == "pass"
    assert checks["minimum.r2"].verdict == "pass"
    mean, linear = checks["baseline_margin.mean"], checks["baseline_margin.linear"]
    assert (mean.operator, mean.threshold, mean.verdict) == ("<=", 67.0, "pass")
    assert (linear.operator, linear.threshold, linear.verdict) == ("<=", 53.0, "pass")
    change = checks["max_degradation.rmse"]
    assert (change.operator, change.threshold, change.verdict) == ("<=", 50.5, "pass")
    assert checks["max_degradation.r2"].operator == ">="


def test_a_higher_rmse_than_its_bounds_fails_the_gate() -> None:
    worse = REGRESSION_METRICS | {"rmse": 61.0}
    production = manifest("v1.0.0", "abc", {"rmse": 55.0})
    checks = by_name(judge(worse, "rmse", production, regression_gate()))
    assert checks["maximum.rmse"].verdict == "fail"
    assert checks["baseline_margin.linear"].verdict == "fail"  # 61 > 55 - 2
    assert checks["max_degradation.rmse"].verdict == "fail"  # 61 > 55 + 1
    assert checks["baseline_margin.mean"].verdict == "pass"  # 61 <= 77 - 10


def test_no_production_model_means_change_checks_pass_vacuously() -> None:
    checks = change_checks(METRICS, "roc_auc", None, gate())
    assert [c.verdict for c in checks] == ["pass", "pass"]
    assert all(c.threshold is None for c in checks)
    assert all("no production model yet" in c.note for c in checks)


def test_change_against_production_in_both_directions() -> None:
    production = manifest("v1.0.0", "abc", {"roc_auc": 0.92, "log_loss": 0.27})
    checks = by_name(change_checks(METRICS, "roc_auc", production, gate()))
    auc = checks["max_degradation.roc_auc"]
    assert (auc.verdict, auc.operator, auc.threshold) == ("fail", ">=", 0.91)
    loss = checks["max_degradation.log_loss"]
    assert (loss.verdict, loss.operator, loss.threshold) == ("fail", "<=", 0.29)
    better = manifest("v1.0.0", "abc", {"roc_auc": 0.905, "log_loss": 0.29})
    assert {c.verdict for c in change_checks(METRICS, "roc_auc", better, gate())} == {"pass"}


def test_a_metric_production_never_had_passes_vacuously() -> None:
    production = manifest("v1.0.0", None, {"roc_auc": 0.9})
    checks = by_name(change_checks(METRICS, "roc_auc", production, gate()))
    assert checks["max_degradation.log_loss"].verdict == "pass"
    assert "production lacks it" in checks["max_degradation.log_loss"].note


def test_a_change_threshold_on_a_directionless_number_is_refused() -> None:
    with pytest.raises(UsageError, match=r"gate.max_degradation.business_threshold: .*direction"):
        check_config(gate(max_degradation={"business_threshold": 0.1}), "roc_auc")


def test_staleness_counts_from_the_commit() -> None:
    committed = NOW - timedelta(days=40)
    limit = {"days": 30.0, "source": "gate.max_age_days"}
    (old,) = staleness_check(committed, NOW, limit)
    assert (old.value, old.verdict) == (40.0, "fail")
    assert old.note == f"committed at {committed.isoformat()}; limit from gate.max_age_days"
    (fresh,) = staleness_check(committed, NOW, limit | {"days": 45.0})
    assert fresh.verdict == "pass"
    assert staleness_check(committed, NOW, limit | {"days": None}) == []


def test_an_uncommitted_model_is_new() -> None:
    (check,) = staleness_check(None, NOW, {"days": 30.0, "source": "x"})
    assert (check.value, check.verdict) == (0.0, "pass")
    assert check.note.startswith("not committed yet")


def manifest(version: str, md5: str | None, metrics: dict[str, float]) -> Manifest:
    """models/production.json as promote writes it, with these numbers."""
    return Manifest(
        version=version,
        git_revision="0" * 40,
        model_md5=(md5 or "f").ljust(32, "0"),
        metrics=metrics,
        promoted_at="2026-05-01T00:00:00+00:00",
    )


def test_parse_metrics_refuses_non_numbers() -> None:
    assert parse_metrics({"roc_auc": 1}, "m.json") == {"roc_auc": 1.0}
    with pytest.raises(UsageError, match="metric 'roc_auc' is not a number"):
        parse_metrics({"roc_auc": "0.9"}, "m.json")
    with pytest.raises(UsageError, match="expected a mapping"):
        parse_metrics([0.9], "m.json")


def test_judge_and_report() -> None:
    production = manifest("v1.0.0", "abc", {"roc_auc": 0.95})
    checks = judge(METRICS, "roc_auc", production, gate())
    assert [c.kind for c in checks] == [
        "minimum", "maximum", "baseline", "baseline", "change", "change"
    ]  # fmt: skip
    result = report(checks, "roc_auc", {"model_md5": "m"}, production)
    assert result["passed"] is False
    assert result["failed"] == ["max_degradation.roc_auc"]
    assert result["summary"] == "gate failed: 1 of 6 checks (max_degradation.roc_auc)"
    assert result["production"] == {"version": "v1.0.0", "model_md5": "abc".ljust(32, "0")}
    assert set(result["checks"][0]) >= {"name", "value", "threshold", "verdict"}
    passing = report(checks[:2], "roc_auc", {}, None)
    assert (passing["passed"], passing["summary"]) == (True, "gate passed: all 2 checks")


def test_markdown_lists_every_check_and_the_slices() -> None:
    checks = judge(METRICS, "roc_auc", None, gate())
    result = report(checks, "roc_auc", {"model_md5": "m"}, None)
    slices = {
        "worst": 0.8,
        "worst_slice": "sex=F",
        "gap": 0.1,
        "gap_attribute": "sex",
        "slices": [
            {"attribute": "sex", "slice": "F", "rows": 10, "positive_rate": 0.5,
             "selection_rate": 0.4, "value": 0.8, "status": "measured"},
        ],
    }  # fmt: skip
    text = markdown(result, slices)
    assert text.startswith("# Model gate: PASSED\n")
    assert all(f"| {c.name} |" in text for c in checks)
    assert "none yet (change thresholds pass vacuously)" in text
    assert "| sex | F | 10 | 0.5 | 0.4 | 0.8 | measured |" in text
    failed = report([Check("minimum.roc_auc", "minimum", 0.8, ">=", 0.9, "fail")], "roc_auc",
                    {}, None)  # fmt: skip
    assert "# Model gate: FAILED" in markdown(failed, None)
    assert "**FAIL**" in markdown(failed, None)


def test_markdown_with_no_slices_says_how_to_set_them_not_an_empty_table() -> None:
    result = report(judge(METRICS, "roc_auc", None, gate()), "roc_auc", {"model_md5": "m"}, None)
    empty = {"worst": None, "worst_slice": None, "gap": None, "gap_attribute": None, "slices": []}
    text = markdown(result, empty)
    assert "No slices measured: name columns in evaluate.slices.columns" in text
    assert "Worst: None" not in text
    assert "| Attribute | Slice |" not in text


def test_a_threshold_on_a_metric_that_does_not_exist_is_refused_at_load(params: Params) -> None:
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["gate"]["minimum"] = {"roc_acu": 0.9}
    with pytest.raises(UsageError) as error:
        parse_params(document)
    message = str(error.value)
    assert "gate.minimum: reports/metrics.json has no 'roc_acu' for a binary task" in message
    assert "\n" not in message


def test_negative_degradation_and_non_positive_age_are_refused() -> None:
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad = {**document, "gate": {**document["gate"], "max_degradation": {"roc_auc": -0.1}}}
    with pytest.raises(UsageError, match=r"gate.max_degradation.roc_auc"):
        parse_params(bad)
    bad = {**document, "gate": {**document["gate"], "max_age_days": 0}}
    with pytest.raises(UsageError, match=r"gate.max_age_days"):
        parse_params(bad)


def test_markdown_slice_columns_are_the_task_s_own() -> None:
    checks = judge(REGRESSION_METRICS, "rmse", None, regression_gate())
    result = report(checks, "rmse", {"model_md5": "m"}, None)
    slices = {
        "worst": 62.0,
        "worst_slice": "sex=male",
        "gap": 3.0,
        "gap_attribute": "sex",
        "slices": [
            {"attribute": "sex", "slice": "male", "rows": 40, "mean_actual": 150.0,
             "mean_predicted": 140.5, "value": 62.0, "status": "measured"},
        ],
    }  # fmt: skip
    text = markdown(result, slices)
    assert "| Attribute | Slice | Rows | Mean actual | Mean predicted | rmse | Status |" in text
    assert "| sex | male | 40 | 150 | 140.5 | 62 | measured |" in text
    assert "Positive rate" not in text


# --- thresholds relative to what the data allows --------------------------------------


def test_a_null_threshold_switches_its_check_off_in_every_section() -> None:
    config = gate(
        minimum={"roc_auc": None, "pr_auc": 0.7},
        maximum={"log_loss": None},
        baseline_margin={"majority": 0.2, "logistic": None},
        max_degradation={"roc_auc": None, "log_loss": 0.02},
    )
    production = manifest("v1.0.0", "abc", {"roc_auc": 0.99, "log_loss": 0.1})
    checks = by_name(judge(METRICS, "roc_auc", production, config))
    off = ["minimum.roc_auc", "maximum.log_loss", "baseline_margin.logistic",
           "max_degradation.roc_auc"]  # fmt: skip
    for name in off:
        assert (checks[name].verdict, checks[name].threshold) == ("off", None), name
        assert checks[name].note == "switched off (null in params.yaml)"
    assert checks["max_degradation.log_loss"].verdict == "fail"  # 0.30 > 0.1 + 0.02
    result = report(list(checks.values()), "roc_auc", {"model_md5": "m"}, production)
    assert [c["name"] for c in result["off"]] == off
    assert not {c["name"] for c in result["checks"]} & set(off)  # judged checks only
    assert result["failed"] == ["max_degradation.log_loss"]
    assert result["summary"] == (
        "gate failed: 1 of 3 checks, 4 switched off (max_degradation.log_loss)"
    )
    text = markdown(result, None)
    assert "| minimum.roc_auc | 0.9 | - | off | switched off (null in params.yaml) |" in text


def test_a_gate_of_only_null_thresholds_passes_with_nothing_judged() -> None:
    config = gate(
        minimum={"slice_worst": None},
        maximum={},
        baseline_margin={"majority": None},
        max_degradation={},
    )
    result = report(judge({}, "roc_auc", None, config), "roc_auc", {}, None)
    assert (result["passed"], result["summary"]) == (
        True,
        "gate passed: all 0 checks, 2 switched off",
    )


def test_a_near_perfect_baseline_asks_for_half_its_headroom() -> None:
    config = gate(baseline_margin={"logistic": 0.01})
    near = {"baseline_logistic": 0.996}
    (passing,) = baseline_checks(near | {"roc_auc": 0.998}, "roc_auc", config)
    assert (passing.verdict, passing.threshold) == ("pass", 0.998)
    assert passing.note == (
        "logistic baseline's roc_auc 0.996; required gain 0.002: the margin 0.01 asks for "
        "more than half the headroom 0.004 to the best roc_auc 1"
    )
    (tied,) = baseline_checks(near | {"roc_auc": 0.996}, "roc_auc", config)
    assert tied.verdict == "fail"
    perfect = {"baseline_logistic": 1.0, "roc_auc": 1.0}
    assert baseline_checks(perfect, "roc_auc", config)[0].verdict == "pass"  # nothing to gain


def test_the_headroom_of_a_lower_is_better_metric_runs_down_to_its_best() -> None:
    config = gate(baseline_margin={"logistic": 0.05})
    metrics = {"baseline_logistic": 0.02, "log_loss": 0.01}
    (check,) = baseline_checks(metrics, "log_loss", config)
    assert (check.operator, check.threshold, check.verdict) == ("<=", 0.01, "pass")
    assert "more than half the headroom 0.02 to the best log_loss 0" in check.note


def test_a_margin_the_headroom_allows_is_kept() -> None:
    (check,) = baseline_checks(METRICS, "roc_auc", gate(baseline_margin={"logistic": 0.01}))
    assert (check.threshold, check.note) == (0.89, "logistic baseline's roc_auc 0.88; margin 0.01")


def test_the_baseline_of_the_model_s_own_family_is_matched_within_the_margin() -> None:
    config = gate(baseline_margin={"majority": 0.2, "logistic": 0.01})
    tied = METRICS | {"roc_auc": 0.88}  # tuned logistic regression ties the baseline
    checks = by_name(baseline_checks(tied, "roc_auc", config, own_baseline="logistic"))
    own = checks["baseline_margin.logistic"]
    assert (own.threshold, own.verdict) == (0.87, "pass")
    assert "margin 0.01 is a tolerance" in own.note
    assert checks["baseline_margin.majority"].threshold == 0.7  # still a margin to beat
    worse = METRICS | {"roc_auc": 0.869}
    (fails,) = baseline_checks(
        worse, "roc_auc", gate(baseline_margin={"logistic": 0.01}), "logistic"
    )
    assert fails.verdict == "fail"
    (other,) = baseline_checks(tied, "roc_auc", gate(baseline_margin={"logistic": 0.01}), None)
    assert other.verdict == "fail"  # another family must beat the baseline


def test_the_linear_family_s_tolerance_for_a_lower_is_better_target() -> None:
    metrics = {"rmse": 55.5, "baseline_linear": 55.0}
    config = regression_gate(baseline_margin={"linear": 2.0})
    (check,) = baseline_checks(metrics, "rmse", config, own_baseline="linear")
    assert (check.operator, check.threshold, check.verdict) == ("<=", 57.0, "pass")


@pytest.mark.parametrize(
    ("task", "family", "expected"),
    [
        ("binary", "logistic_regression", "logistic"),
        ("multiclass", "logistic_regression", "logistic"),
        ("regression", "ridge", "linear"),
        ("binary", "hist_gradient_boosting", None),
        ("regression", None, None),
    ],
)
def test_own_baseline_is_the_linear_one_for_the_linear_family(
    task: TaskName, family: str | None, expected: str | None
) -> None:
    assert own_baseline(task, family) == expected


UNMEASURED = (
    "no slice could be measured: sex=F (too small: 30 rows < min_rows 50); "
    "race=Other (not measurable: the rows hold a single class)"
)


@pytest.mark.parametrize("policy", ["fail", "pass"])
def test_unmeasurable_slices_follow_the_policy_and_name_the_slices(policy: str) -> None:
    config = gate(
        minimum={"slice_worst": 0.8, "pr_auc": 0.9},
        maximum={"slice_gap": 0.1},
        unmeasurable_slices=policy,
    )
    unavailable = {"slice_worst": UNMEASURED, "slice_gap": "no attribute has two measured slices"}
    checks = by_name(absolute_checks(METRICS, config, unavailable))
    worst = checks["minimum.slice_worst"]
    assert (worst.value, worst.threshold, worst.verdict) == (None, 0.8, policy)
    assert f"reports/metrics.json has no slice_worst: {UNMEASURED}" in worst.note
    assert f"gate.unmeasurable_slices: {policy}" in worst.note
    assert checks["maximum.slice_gap"].verdict == policy
    assert checks["minimum.pr_auc"].verdict == "fail"  # the policy is for slice numbers only
    measured = by_name(absolute_checks(METRICS | {"slice_worst": 0.7}, config, unavailable))
    assert measured["minimum.slice_worst"].verdict == "fail"  # a measured slice is judged


def test_a_missing_number_quotes_evaluation_json_s_reason() -> None:
    unavailable = {"business_correlation": "no tuning trials table"}
    (check,) = absolute_checks({}, gate(minimum={"business_correlation": 0.5}, maximum={}),
                               unavailable)  # fmt: skip
    assert check.verdict == "fail"
    assert check.note == "reports/metrics.json has no business_correlation: no tuning trials table"


# --- imbalanced classes --------------------------------------------------------------

# A 3 %-positive set tuned by ROC AUC with class_weight: balanced.
IMBALANCED = {"roc_auc": 0.9, "accuracy": 0.82, "majority_accuracy": 0.97, "ece": 0.19}
BALANCED = {"C": 1.0, "class_weight": "balanced"}
ECE_ONLY = gate(minimum={}, maximum={"ece": 0.05}, baseline_margin={}, max_degradation={})


def test_a_classifier_worse_than_the_majority_is_told_what_to_change() -> None:
    checks = judge(IMBALANCED, "roc_auc", None, ECE_ONLY)
    advice = imbalance_advice(
        IMBALANCED, checks, tune_metric="roc_auc", family="logistic_regression", params=BALANCED
    )
    assert advice is not None
    assert advice.startswith(
        "accuracy 0.82 is below always predicting the majority class (0.97) and "
        "ECE 0.19 fails maximum.ece 0.05: "
    )
    assert "remove balanced from tune.space.logistic_regression.class_weight" in advice
    assert "tune on brier or log_loss (tune.metric, now roc_auc" in advice
    assert "reports/plots/calibration.png" in advice
    advised = by_name(with_advice(checks, advice))
    assert advised["maximum.ece"].note == advice  # the failing check says it too
    result = report(list(advised.values()), "roc_auc", {}, None, advice)
    assert result["advice"] == advice
    assert f"## What to change\n\n{advice}." in markdown(result, None)


def test_advice_names_only_the_fixes_that_apply() -> None:
    checks = judge(IMBALANCED, "log_loss", None, ECE_ONLY)
    advice = imbalance_advice(
        IMBALANCED, checks, tune_metric="log_loss", family="random_forest", params={}
    )
    assert advice is not None
    assert "class_weight" not in advice
    assert "tune on" not in advice
    assert "calibrate the model's probabilities (train.calibration: sigmoid)" in advice
    calibrated = imbalance_advice(
        IMBALANCED,
        checks,
        tune_metric="log_loss",
        family="random_forest",
        params={},
        calibration="sigmoid",
    )
    assert calibrated is not None
    assert "train.calibration" not in calibrated  # set already: more trials, more rows
    assert "refitted by sigmoid already" in calibrated
    only_accuracy = imbalance_advice(
        IMBALANCED | {"ece": 0.01}, [], tune_metric="roc_auc", family="x", params={}
    )
    assert only_accuracy is not None
    assert "ECE" not in only_accuracy


def test_no_advice_for_a_model_that_beats_the_majority_or_a_regressor() -> None:
    fine = IMBALANCED | {"accuracy": 0.98, "ece": 0.01}
    checks = judge(fine, "roc_auc", None, gate(maximum={"ece": 0.05}))
    assert imbalance_advice(fine, checks, tune_metric="roc_auc", family=None, params={}) is None
    assert with_advice(checks, None) == checks
    regression = judge(REGRESSION_METRICS, "rmse", None, regression_gate())
    assert (
        imbalance_advice(
            REGRESSION_METRICS, regression, tune_metric="rmse", family="ridge", params={}
        )
        is None
    )
    result = report(checks, "roc_auc", {}, None)
    assert "advice" not in result
    assert "What to change" not in markdown(result, None)


# --- params: null thresholds, the slice policy, evaluate.business null ----------------


def _document(**gate_values: Any) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["gate"] |= gate_values
    return dict(document)


def test_null_thresholds_and_the_slice_policy_parse() -> None:
    params = parse_params(_document(
        minimum={"roc_auc": None}, baseline_margin={"logistic": None},
        max_degradation={"business_threshold": None}, unmeasurable_slices="pass",
    ))  # fmt: skip
    assert params.gate.minimum == {"roc_auc": None}
    assert params.gate.unmeasurable_slices == "pass"
    with pytest.raises(UsageError, match=r"gate\.unmeasurable_slices"):
        parse_params(_document(unmeasurable_slices="skip"))
    with pytest.raises(UsageError, match=r"gate\.unmeasurable_groups"):
        parse_params(_document(unmeasurable_groups="skip"))
    with pytest.raises(UsageError, match=r"gate\.max_age_days"):
        parse_params(_document(max_age_days="measure"))
    with pytest.raises(UsageError, match=r"gate\.minimum: reports/metrics\.json has no 'roc_acu'"):
        parse_params(_document(minimum={"roc_acu": None}))  # a typo is one, null or not


def test_a_business_threshold_without_business_values_names_the_fix() -> None:
    document = _document()
    document["evaluate"]["business"] = None
    with pytest.raises(UsageError) as error:
        parse_params(document)
    message = str(error.value)
    assert message == (
        "params.yaml: gate.minimum.business_value: evaluate.business is null, so no "
        "business_value is computed; set evaluate.business's values, or make this "
        "threshold null"
    )
    unset = {"business_value": None, "business_correlation": None}
    document["gate"]["minimum"] = {**document["gate"]["minimum"], **unset}
    assert parse_params(document).evaluate.business is None


def test_the_shipped_gate_judges_the_demo_as_before(params: Params) -> None:
    """The demo's params: no check off but the raw four-fifths rule (its labels fail it,
    see params.yaml), margins as written (its baselines leave room)."""
    demo = {"roc_auc": 0.929452, "baseline_majority": 0.5, "baseline_logistic": 0.908797}
    checks = by_name(baseline_checks(demo, "roc_auc", params.gate))
    assert checks["baseline_margin.majority"].threshold == 0.7
    assert checks["baseline_margin.logistic"].threshold == 0.918797
    off = [name for name, v in params.gate.minimum.items() if v is None]
    assert off == ["selection_rate_ratio"]
    assert params.gate.unmeasurable_slices == "fail"


def test_the_gate_stage_reads_the_family_reasons_and_tune_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlops gate` on written reports: the model card's family makes the logistic
    margin a tolerance, evaluation.json's reasons reach the notes, tune.metric the advice."""
    monkeypatch.chdir(tmp_path)
    document = _document(
        minimum={"roc_auc": None, "slice_worst": 0.8},
        maximum={"ece": 0.05},
        baseline_margin={"majority": 0.2, "logistic": 0.01},
        max_degradation={},
        unmeasurable_slices="pass",
    )
    Path("params.yaml").write_text(yaml.safe_dump(document))
    card = {"model": {"family": "logistic_regression", "params": BALANCED}}
    evaluation = {"metric": "roc_auc", "unavailable": {"slice_worst": UNMEASURED}}
    written = {
        "reports/metrics.json": IMBALANCED | {"baseline_majority": 0.5, "baseline_logistic": 0.9},
        "reports/evaluation.json": evaluation,
        "models/model_card.json": card,
    }
    for name, content in written.items():
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_text(json.dumps(content))
    Path("models/model.skops").write_bytes(b"a model")
    assert main(["gate"]) == 0
    assert "gate failed: 1 of 4 checks, 1 switched off (maximum.ece)" in capsys.readouterr().out
    result = json.loads(Path("reports/gate.json").read_text())
    checks = {c["name"]: c for c in result["checks"]}
    logistic = checks["baseline_margin.logistic"]
    assert (logistic["threshold"], logistic["verdict"]) == (0.89, "pass")  # 0.9 - 0.01
    assert UNMEASURED in checks["minimum.slice_worst"]["note"]
    assert checks["minimum.slice_worst"]["verdict"] == "pass"
    assert [c["name"] for c in result["off"]] == ["minimum.roc_auc"]
    assert "remove balanced from tune.space.logistic_regression" in result["advice"]
    assert checks["maximum.ece"]["note"] == result["advice"]
    text = Path("reports/gate.md").read_text()
    assert "| minimum.roc_auc | 0.9 | - | off |" in text
    assert "## What to change" in text
