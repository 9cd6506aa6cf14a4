"""The respond policy: each branch, for each task, on synthetic findings (pure, fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from mlops.config import RespondConfig, parse_params
from mlops.errors import UsageError
from mlops.monitoring import policy
from mlops.tasks.metrics import TaskName
from tests.conftest import ROOT

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# Per task, a metric monitoring reports, its test value, a value past the floor, the floor.
METRICS: dict[TaskName, tuple[str, float, float, float]] = {
    "binary": ("roc_auc", 0.90, 0.70, 0.80),
    "multiclass": ("accuracy", 0.85, 0.50, 0.70),
    "regression": ("rmse", 3.0, 9.0, 6.0),  # a loss: the floor is a ceiling
}
TASKS = list(METRICS)


def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
    return raw


def config(task: TaskName, **changes: Any) -> RespondConfig:
    name, _, _, floor = METRICS[task]
    section = {**_raw()["respond"], "performance_floor": {name: floor}, **changes}
    return RespondConfig.model_validate(section)


def facts(task: TaskName, labelled: int = 10_000, promoted_days_ago: float = 30) -> policy.Facts:
    return policy.Facts(task, NOW, NOW - timedelta(days=promoted_days_ago), labelled)


def finding(check: str, flagged: bool = False, **evidence: Any) -> dict[str, Any]:
    return {"check": check, "breach": flagged, "summary": f"{check} summary", "evidence": evidence}


def healthy(task: TaskName) -> list[dict[str, Any]]:
    name, reference, _, _ = METRICS[task]
    return [
        finding("input_quality", all_null=[], refused_rate=0.0, unseen={}, scale_changed=[]),
        finding("drift", share=0.0, drifted=[]),
        finding("prediction_drift"),
        finding("stability", nan=0, infinite=0, out_of_range=0),
        finding(
            "performance",
            metric=name,
            value=reference,
            reference=reference,
            breach=False,
            labelled_rows=800,
        ),
        finding("staleness", model_age_days=3, data_age_days=10),
    ]


def with_finding(findings: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    return [new if f["check"] == new["check"] else f for f in findings]


def decide(task: TaskName, findings: list[dict[str, Any]], **kwargs: Any) -> policy.Decision:
    return policy.decide(findings, config(task), facts(task, **kwargs))


@pytest.mark.parametrize("task", TASKS)
def test_healthy_production_needs_no_action(task: TaskName) -> None:
    decision = decide(task, healthy(task))
    assert (decision.action, decision.reasons, decision.findings) == ("none", [], [])


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("counts", [{"nan": 3}, {"infinite": 1}, {"out_of_range": 7}])
def test_unstable_answers_roll_back(task: TaskName, counts: dict[str, int]) -> None:
    unstable = finding("stability", True, **{"nan": 0, "infinite": 0, "out_of_range": 0, **counts})
    decision = decide(task, with_finding(healthy(task), unstable))
    assert decision.action == "rollback"
    assert decision.reasons[0].startswith("unstable:")
    assert [f["check"] for f in decision.findings] == ["stability"]


@pytest.mark.parametrize("task", TASKS)
def test_performance_below_the_floor_rolls_back(task: TaskName) -> None:
    name, reference, bad, _ = METRICS[task]
    fallen = finding("performance", True, metric=name, value=bad, reference=reference, breach=True)
    decision = decide(task, with_finding(healthy(task), fallen))
    assert decision.action == "rollback"
    assert decision.reasons[0].startswith("below_floor:")


@pytest.mark.parametrize("task", TASKS)
def test_below_the_floor_on_broken_inputs_alerts(task: TaskName) -> None:
    """Inputs broken upstream score badly with any model: no rollback, an alert."""
    name, reference, bad, _ = METRICS[task]
    fallen = finding("performance", True, metric=name, value=bad, reference=reference, breach=True)
    broken = finding("input_quality", True, all_null=[], scale_changed=["age"], refused_rate=0.0)
    decision = decide(task, with_finding(with_finding(healthy(task), fallen), broken))
    assert decision.action == "alert"
    assert decision.reasons[0].startswith("scale_changed:")


@pytest.mark.parametrize("task", TASKS)
def test_decay_above_the_floor_retrains_with_enough_labels(task: TaskName) -> None:
    name, reference, _, floor = METRICS[task]
    between = (reference + floor) / 2
    decayed = finding(
        "performance", True, metric=name, value=between, reference=reference, breach=True
    )
    decision = decide(task, with_finding(healthy(task), decayed))
    assert decision.action == "retrain"
    assert decision.reasons[0].startswith("performance_decay:")


def unlabelled(task: TaskName) -> list[dict[str, Any]]:
    """Healthy findings before labels arrive: performance not judged."""
    name, reference, _, _ = METRICS[task]
    waiting = finding("performance", metric=name, value=None, reference=reference, breach=False)
    return with_finding(healthy(task), waiting)


@pytest.mark.parametrize("task", TASKS)
def test_prediction_drift_rolls_back_only_right_after_a_promotion(task: TaskName) -> None:
    findings = with_finding(unlabelled(task), finding("prediction_drift", True))
    assert decide(task, findings, promoted_days_ago=1).action == "rollback"
    assert decide(task, findings, promoted_days_ago=30).action == "none"


@pytest.mark.parametrize("task", TASKS)
def test_labels_judge_instead_of_prediction_drift(task: TaskName) -> None:
    """With a realised value above the floor, moved answers are no reason to roll back."""
    findings = with_finding(healthy(task), finding("prediction_drift", True))
    assert decide(task, findings, promoted_days_ago=1).action == "none"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "inputs",
    [
        finding("drift", True, share=0.6, drifted=["age", "hours_per_week"]),
        finding("input_quality", True, all_null=["age"], refused_rate=0.0, scale_changed=[]),
    ],
)
def test_prediction_drift_with_moved_inputs_is_no_rollback(
    task: TaskName, inputs: dict[str, Any]
) -> None:
    """Answers that moved with their inputs right after a promotion: the inputs'
    findings decide (retrain, alert), the model is not rolled back."""
    findings = with_finding(
        with_finding(unlabelled(task), inputs), finding("prediction_drift", True)
    )
    decision = decide(task, findings, promoted_days_ago=1)
    assert decision.action == {"drift": "retrain", "input_quality": "alert"}[inputs["check"]]


@pytest.mark.parametrize("task", TASKS)
def test_feature_drift_retrains_only_with_enough_new_labels(task: TaskName) -> None:
    drifted = finding("drift", True, share=0.6, drifted=["age", "hours_per_week"])
    findings = with_finding(healthy(task), drifted)
    decision = decide(task, findings)
    assert decision.action == "retrain"
    assert "age, hours_per_week" in decision.reasons[0]
    short = decide(task, findings, labelled=10)
    assert short.action == "none"
    assert "10 new labelled rows" in short.held_back[0]
    below = with_finding(healthy(task), finding("drift", False, share=0.2, drifted=["age"]))
    assert decide(task, below).action == "none"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "evidence",
    [
        {"all_null": ["age"]},
        {"scale_changed": ["capital_gain"]},
        {"refused_rate": 0.5, "refused_rate_breach": True, "max_refused_rate": 0.05},
    ],
)
def test_broken_inputs_alert_and_win_over_retrain(task: TaskName, evidence: dict[str, Any]) -> None:
    """A broken upstream feature also drifts: the alert must still win over a retrain."""
    quality = {"all_null": [], "refused_rate": 0.0, "unseen": {}, "scale_changed": [], **evidence}
    findings = with_finding(healthy(task), finding("input_quality", True, **quality))
    findings = with_finding(findings, finding("drift", True, share=1.0, drifted=["age"]))
    decision = decide(task, findings)
    assert decision.action == "alert"
    assert [f["check"] for f in decision.findings] == ["input_quality"]


def test_rollback_outranks_alert_and_the_order_is_the_params() -> None:
    findings = with_finding(healthy("binary"), finding("stability", True, nan=5))
    findings = with_finding(findings, finding("input_quality", True, all_null=["age"]))
    assert decide("binary", findings).action == "rollback"
    rules = _raw()["respond"]["policy"]
    reordered = config("binary", policy=[rules[1], rules[0], rules[2]])
    assert policy.decide(findings, reordered, facts("binary")).action == "alert"


def test_a_policy_naming_an_unknown_action_or_check_is_a_params_error() -> None:
    raw = _raw()
    for rule in (
        {"action": "reboot", "when": ["unstable"]},
        {"action": "rollback", "when": ["cosmic_rays"]},
    ):
        raw["respond"]["policy"] = [rule]
        with pytest.raises(UsageError) as caught:
            parse_params(raw)
        assert "respond.policy" in str(caught.value)
        assert "\n" not in str(caught.value)


def test_a_floor_on_a_metric_of_another_task_is_a_params_error() -> None:
    with pytest.raises(UsageError, match=r"respond\.performance_floor"):
        policy.check_config(config("binary"), "regression")


def test_malformed_findings_are_refused_in_one_line() -> None:
    for document in ({}, {"findings": [{"check": "vibes", "breach": True}]}, [1]):
        with pytest.raises(UsageError, match=r"monitoring\.json"):
            policy.findings_of(document, "monitoring.json")
