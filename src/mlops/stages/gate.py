"""Stage ``gate``: judge the evaluated model -> reports/gate.json and reports/gate.md.

``mlops gate`` always writes its verdict and exits 0 when it could judge:
a failing gate is a result, so `dvc repro` completes and the report says why.
``mlops gate --check`` reads that verdict for CI: exit 1 when the gate failed
or judged another model or another production model than the current ones.

Beside the numbers, the gate reads evaluation.json's reason for each number it
lacks (quoted in the check's note), the model card's family and hyperparameters
(the linear baseline's margin is a tolerance when the search picked its family;
``class_weight: balanced`` is named when a classifier loses to the majority
class) and tune.metric (whether tuning rewarded calibrated probabilities).
It names the protected groups too small to measure (evaluation.json's
fairness section) and records the age limit `--check` applies, configured or
derived from evaluation.json's measured staleness (gate.max_age_days: measured).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from mlops.config import PATHS, EvaluateConfig, GateConfig
from mlops.errors import CheckFailed, UsageError
from mlops.io import files, git
from mlops.release.gating import (
    age_limit,
    imbalance_advice,
    judge,
    markdown,
    parse_metrics,
    report,
    staleness_check,
    with_advice,
)
from mlops.release.manifest import read_production
from mlops.tasks.metrics import TaskName, get_metric

SUMMARY = "judge the model against thresholds and production -> reports/gate.json, gate.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless reports/gate.json passed for the current model (for CI)",
    )


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    if args.check:
        check_report(params.gate)
        return
    metrics = parse_metrics(
        files.read_json(PATHS.metrics, "metrics (run `dvc repro evaluate`)"), str(PATHS.metrics)
    )
    details = files.read_json(PATHS.evaluation, "evaluation report (run `dvc repro evaluate`)")
    card = files.read_json(PATHS.model_card, "model card (run `dvc repro train`)")
    production = read_production()
    target = target_metric(details, params.data.task)
    family, hyperparameters, calibration = tuned_model(card)
    checks = judge(
        metrics,
        target,
        production,
        params.gate,
        unavailable=details.get("unavailable") or {},
        own_baseline=own_baseline(params.data.task, family),
        fairness=details.get("fairness"),
        off=switched_off(params.evaluate),
    )
    advice = imbalance_advice(
        metrics,
        checks,
        tune_metric=params.tune.metric,
        family=family,
        params=hyperparameters,
        calibration=calibration,
    )
    limit = age_limit(params.gate, details.get("staleness"), target)
    result = report(
        with_advice(checks, advice), target, candidate(card), production, advice, limit=limit
    )
    files.write_json(PATHS.gate, result)
    files.write_text(
        PATHS.gate_summary, markdown(result, details.get("slices"), details.get("fairness"))
    )
    print(f"mlops gate: {result['summary']} (see {PATHS.gate_summary})")


def switched_off(evaluate: EvaluateConfig) -> dict[str, str]:
    """Numbers evaluate was told not to compute, and why: their thresholds are off."""
    if evaluate.business is not None and evaluate.business.correlation_trials == 0:
        return {"business_correlation": "evaluate.business.correlation_trials is 0: not measured"}
    return {}


def target_metric(details: Any, task: TaskName) -> str:
    """The target metric evaluation.json names; it must be one of the task's."""
    target = str(details.get("metric", "")) if isinstance(details, dict) else ""
    if not target:
        raise UsageError(f"{PATHS.evaluation}: no target 'metric' (run `dvc repro evaluate`)")
    try:
        get_metric(target, task)
    except ValueError as exc:
        raise UsageError(
            f"{PATHS.evaluation}: target metric {exc} (evaluated for another data.task? "
            "run `dvc repro evaluate`)"
        ) from None
    return target


def tuned_model(card: Any) -> tuple[str | None, dict[str, Any], str | None]:
    """The model card's family, hyperparameters and calibration method of the judged
    model (None, {}, None: not said)."""
    model = card.get("model") if isinstance(card, dict) else None
    if not isinstance(model, dict):
        return None, {}, None
    family, params = model.get("family"), model.get("params")
    calibration = model.get("calibration")
    method = calibration.get("method") if isinstance(calibration, dict) else None
    return (
        str(family) if family else None,
        params if isinstance(params, dict) else {},
        str(method) if method else None,
    )


def own_baseline(task: TaskName, family: str | None) -> str | None:
    """The baseline of the tuned model's own family: the linear one, when the search
    picked the linear family (its margin is then a tolerance; see release.gating)."""
    from mlops.tasks.task import get_task  # pandas: not at start-up (see mlops.cli)

    spec = get_task(task)
    _, linear = spec.baselines  # Task.baselines names the trivial model, then the linear
    return linear if family == spec.linear_family else None


def candidate(card: dict[str, Any]) -> dict[str, Any]:
    """What was judged: the model file's bytes and the data it was trained on."""
    if not PATHS.model.is_file():
        raise UsageError(f"{PATHS.model}: model file not found (run `dvc repro train`)")
    training = card.get("training_data", {})
    return {
        "model_md5": files.file_md5(PATHS.model),
        "training_data_md5": training.get("md5") if isinstance(training, dict) else None,
    }


def check_report(config: GateConfig) -> None:
    """For CI: fail unless the recorded verdict passed and still applies, and the
    model is not older than ``gate.max_age_days`` (counted from its commit)."""
    result = files.read_json(PATHS.gate, "gate report (run `dvc repro gate`)")
    if not isinstance(result, dict) or not isinstance(result.get("passed"), bool):
        raise UsageError(f"{PATHS.gate}: not a gate report (no 'passed' verdict)")
    judged_md5 = (result.get("candidate") or {}).get("model_md5")
    if judged_md5 != (files.file_md5(PATHS.model) if PATHS.model.is_file() else None):
        raise CheckFailed(f"{PATHS.gate} judged another model file; run `dvc repro`")
    production = read_production()
    judged = (result.get("production") or {}).get("version")
    current = None if production is None else production.version
    # Once promoted, the candidate is production: its verdict still stands.
    promoted = production is not None and production.model_md5 == judged_md5
    if judged != current and not promoted:
        raise CheckFailed(
            f"{PATHS.gate} compared the model with {_production(judged)}, but production is "
            f"now {_production(current)}; run `dvc repro --force --single-item gate`"
        )
    if not result["passed"]:
        raise CheckFailed(f"{result.get('summary', 'gate failed')}; see {PATHS.gate_summary}")
    committed_at = git.first_commit_time(str(judged_md5), PATHS.dvc_lock)
    limit = result.get("age_limit") if config.max_age_days == "measured" else None
    if config.max_age_days == "measured" and not isinstance(limit, dict):
        raise UsageError(f"{PATHS.gate}: no age_limit recorded (run `dvc repro gate`)")
    if limit is None:  # a configured number (or null): params.yaml's, as it is now
        limit = {"days": config.max_age_days, "source": "gate.max_age_days"}
    for check in staleness_check(committed_at, datetime.now(UTC), limit):
        if check.verdict == "fail":
            raise CheckFailed(
                f"model {judged_md5} is {check.value} days old ({check.note}), older than "
                f"its age limit {check.threshold}; retrain it (`dvc repro`) and commit"
            )
    print(f"mlops gate: {result['summary']}")


def _production(version: object) -> str:
    return str(version) if version else "no production model"
