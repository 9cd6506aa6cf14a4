"""From monitoring's findings to one action: the respond policy of params.yaml.

``mlops monitor`` writes reports/monitoring/monitoring.json: a list of findings,
each a check's verdict with its evidence. The policy is a list of rules in
priority order, each an action and the conditions that call for it; the first
rule with a condition that holds decides, and none: no action. The order
matters: a broken upstream feature also looks like drift, and retraining on
broken data would make the model worse, so the alert rule comes before the
retrain rule in the shipped policy. A retraining also needs enough new labelled
rows; short of them, the rule is held back (recorded, not taken) and the next
rule is tried.

Pure: the caller reads the files and passes the facts in (labelled rows, the
production model's promotion time, now).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.config import Condition, RespondConfig
from mlops.errors import UsageError, clip, shorten
from mlops.monitoring.findings import CHECKS
from mlops.tasks.metrics import TaskName, get_metric

NONE = "none"


@dataclass(frozen=True)
class Facts:
    """What the decision needs besides the findings."""

    task: TaskName
    now: datetime
    promoted_at: datetime | None  # the production model's promotion (None: nothing promoted)
    labelled_rows: int  # new labelled rows a retraining could learn from


@dataclass(frozen=True)
class Decision:
    """The action, why (one line per condition that holds), the findings behind it, and
    the rules that held but were held back (a retraining short of labelled rows)."""

    action: str
    reasons: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)


def check_config(config: RespondConfig, task: TaskName) -> None:
    """The floors must name metrics of ``task``: a params error in one line otherwise."""
    for name in config.performance_floor:
        try:
            get_metric(name, task)
        except ValueError as exc:
            raise UsageError(f"params.yaml: respond.performance_floor: {exc}") from None


def findings_of(monitoring: Any, source: str) -> list[dict[str, Any]]:
    """The findings of a monitoring.json document, checked; a bad one is a UsageError."""
    found = monitoring.get("findings") if isinstance(monitoring, dict) else None
    if not isinstance(found, list):
        raise UsageError(f"{source}: expected a JSON object with a list of 'findings'")
    for position, finding in enumerate(found):
        problem = _finding_problem(finding)
        if problem:
            raise UsageError(f"{source}: findings[{position}]: {problem}")
    return found


def _finding_problem(finding: Any) -> str | None:
    if not isinstance(finding, dict):
        return "expected an object with check, breach, summary and evidence"
    if finding.get("check") not in CHECKS:
        return f"unknown check {shorten(finding.get('check'))}; expected one of {sorted(CHECKS)}"
    if not isinstance(finding.get("breach"), bool):
        return "'breach' must be true or false"
    if not isinstance(finding.get("evidence", {}), dict):
        return "'evidence' must be an object"
    return None


def decide(findings: Sequence[Mapping[str, Any]], config: RespondConfig, facts: Facts) -> Decision:
    """The first rule of the policy with a condition that holds (see the module docstring)."""
    by_check = {str(f["check"]): f for f in findings}
    held_back: list[str] = []
    for rule in config.policy:
        hits = [
            (condition, reason)
            for condition in rule.when
            if (reason := _CONDITIONS[condition](by_check, config, facts)) is not None
        ]
        if not hits:
            continue
        reasons = [f"{condition}: {reason}" for condition, reason in hits]
        if rule.action == "retrain" and facts.labelled_rows < config.min_labelled_rows:
            held_back.append(
                f"retrain ({'; '.join(reasons)}) held back: {facts.labelled_rows} new labelled "
                f"rows, fewer than respond.min_labelled_rows ({config.min_labelled_rows})"
            )
            continue
        checks = {_CHECK_OF[condition] for condition, _ in hits}
        evidence = [dict(f) for name, f in by_check.items() if name in checks]
        return Decision(rule.action, reasons, evidence, held_back)
    return Decision(NONE, held_back=held_back)


# --- the conditions: each a reason (one line) when it holds, else None ----------------

Findings = Mapping[str, Mapping[str, Any]]


def _evidence(findings: Findings, check: str) -> Mapping[str, Any] | None:
    finding = findings.get(check)
    if finding is None:
        return None
    evidence = finding.get("evidence", {})
    return evidence if isinstance(evidence, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unstable(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    evidence = _evidence(findings, "stability")
    if evidence is None:
        return None
    counts = {key: _number(evidence.get(key)) or 0 for key in ("nan", "infinite", "out_of_range")}
    if not any(counts.values()) and not findings["stability"]["breach"]:
        return None
    detail = ", ".join(f"{int(n)} {key.replace('_', '-')}" for key, n in counts.items() if n)
    return f"the model's answers are not numerically stable ({detail or 'see the finding'})"


def _breached(findings: Findings, *checks: str) -> bool:
    return any(findings.get(check, {}).get("breach") for check in checks)


def _below_floor(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    evidence = _evidence(findings, "performance")
    # Inputs broken upstream score badly with any model: rolling back would not help,
    # the alert rule decides (mlops drill: units x1000 went below the floor).
    if evidence is None or _breached(findings, "input_quality"):
        return None
    name, value = evidence.get("metric"), _number(evidence.get("value"))
    floor = config.performance_floor.get(str(name))
    if floor is None or value is None:
        return None
    metric = get_metric(str(name), facts.task)
    if metric.sign * (value - floor) >= 0:
        return None
    side = "below" if metric.greater_is_better else "above"
    return f"realised {name} {value:.4g} is {side} the floor {floor:.4g}"


def _prediction_drift_after_promotion(
    findings: Findings, config: RespondConfig, facts: Facts
) -> str | None:
    finding = findings.get("prediction_drift")
    if finding is None or not finding["breach"] or facts.promoted_at is None:
        return None
    # Answers that moved with their inputs (drifted, or broken upstream) say nothing
    # against the model: those findings decide (a covariate shift right after a
    # promotion is no reason to roll back a good model; mlops drill showed it). And the
    # answers' distribution is a stand-in for labels: once labels judged the window
    # (a realised value), below_floor and performance_decay decide (the full drill rolled
    # back on a KS p of 0.02 a model whose realised roc_auc was 0.835, above the floor).
    realised = _number((_evidence(findings, "performance") or {}).get("value"))
    if _breached(findings, "drift", "input_quality") or realised is not None:
        return None
    days = (facts.now - facts.promoted_at).total_seconds() / 86400
    if days > config.after_promotion_days:
        return None
    return (
        f"the prediction distribution moved {days:.1f} days after the promotion "
        f"(within {config.after_promotion_days:g}): {clip(finding.get('summary', ''), 120)}"
    )


def _names(findings: Findings, key: str) -> list[str]:
    evidence = _evidence(findings, "input_quality") or {}
    value = evidence.get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def _all_null(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    names = _names(findings, "all_null")
    return f"null in every logged row: {', '.join(names)}" if names else None


def _scale_changed(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    names = _names(findings, "scale_changed")
    return f"units changed upstream (median moved ~100x): {', '.join(names)}" if names else None


def _refused_rate(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    """The monitor's verdict on the refused rate (its limit: monitor.input_quality)."""
    evidence = _evidence(findings, "input_quality") or {}
    rate, limit = _number(evidence.get("refused_rate")), _number(evidence.get("max_refused_rate"))
    if not evidence.get("refused_rate_breach") or rate is None:
        return None
    return f"{rate:.1%} of requests refused (monitor limit {limit or 0:.0%})"


def _feature_drift(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    """The monitor's drift verdict (its dataset-level share: monitor.drift.share)."""
    drift = findings.get("drift")
    if drift is None or not drift.get("breach"):
        return None
    evidence = drift.get("evidence") or {}
    share = _number(evidence.get("share"))
    drifted = evidence.get("drifted") or []
    names = ", ".join(map(str, drifted)) if isinstance(drifted, list) else ""
    return f"{share or 0:.0%} of features drifted: {names}"


def _performance_decay(findings: Findings, config: RespondConfig, facts: Facts) -> str | None:
    finding = findings.get("performance")
    if finding is None:
        return None
    evidence = _evidence(findings, "performance") or {}
    if not (finding["breach"] or evidence.get("breach") is True):
        return None
    return clip(finding.get("summary") or "realised performance below the test metrics", 200)


Rule = Callable[[Findings, RespondConfig, Facts], str | None]
_CONDITIONS: dict[Condition, Rule] = {
    "unstable": _unstable,
    "below_floor": _below_floor,
    "prediction_drift_after_promotion": _prediction_drift_after_promotion,
    "all_null": _all_null,
    "scale_changed": _scale_changed,
    "refused_rate": _refused_rate,
    "feature_drift": _feature_drift,
    "performance_decay": _performance_decay,
}
# Which finding each condition reads: its evidence goes into the decision's record.
_CHECK_OF: dict[Condition, str] = {
    "unstable": "stability",
    "below_floor": "performance",
    "prediction_drift_after_promotion": "prediction_drift",
    "all_null": "input_quality",
    "scale_changed": "input_quality",
    "refused_rate": "input_quality",
    "feature_drift": "drift",
    "performance_decay": "performance",
}
