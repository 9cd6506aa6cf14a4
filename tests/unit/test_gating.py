"""The gate's pure logic: checks, directions, production manifest, staleness, reports,
for every task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from mlops.config import GateConfig, Params, parse_params
from mlops.errors import UsageError
from mlops.release.gating import (
    Check,
    absolute_checks,
    baseline_checks,
    change_checks,
    check_config,
    higher_is_better,
    judge,
    markdown,
    parse_metrics,
    report,
    staleness_check,
)
from mlops.release.registry import Manifest
from mlops.tasks.metrics import TASK_NAMES, report_names
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
        unmeasurable_slices="fail",
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
    (old,) = staleness_check(committed, NOW, gate())
    assert (old.value, old.verdict) == (40.0, "fail")
    assert old.note == f"committed at {committed.isoformat()}"
    (fresh,) = staleness_check(committed, NOW, gate(max_age_days=45.0))
    assert fresh.verdict == "pass"
    assert staleness_check(committed, NOW, gate(max_age_days=None)) == []


def test_an_uncommitted_model_is_new() -> None:
    (check,) = staleness_check(None, NOW, gate())
    assert (check.value, check.verdict, check.note) == (0.0, "pass", "not committed yet")


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
