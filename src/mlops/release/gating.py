"""The gate: is the candidate model good enough, and no worse than production?

Every check reads "value operator threshold" and has a verdict. Absolute
thresholds and baseline margins judge the candidate alone; change thresholds
compare it with the production model named in models/production.json, and
pass vacuously when there is none yet (as TFX's Evaluator does). Staleness
bounds the model's age when it is promoted. A failed gate is a result, written
like a passed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from mlops.config import GateConfig
from mlops.errors import UsageError
from mlops.release.registry import Manifest, numeric_metrics
from mlops.tasks.metrics import BASELINE_PREFIX, METRICS, report_direction

_SECONDS_PER_DAY = 86400.0

Verdict = Literal["pass", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the gate: ``value operator threshold`` -> verdict."""

    name: str
    kind: str
    value: float | None
    operator: Literal[">=", "<="]
    threshold: float | None
    verdict: Verdict
    note: str = ""


def higher_is_better(name: str, target: str) -> bool | None:
    """The direction of a metrics.json number, given the target metric's name."""
    try:
        return report_direction(name, target)
    except KeyError:
        raise UsageError(
            f"reports/metrics.json: {name!r} is not a number evaluate writes"
        ) from None


def parse_metrics(raw: Any, source: str) -> dict[str, float]:
    """reports/metrics.json as a flat mapping of numbers."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: expected a mapping of metric names to numbers")
    for name, value in raw.items():
        if not _is_number(value):
            raise UsageError(f"{source}: metric {name!r} is not a number ({value!r})")
    return {str(name): float(value) for name, value in raw.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_config(config: GateConfig, target: str) -> None:
    """Refuse change thresholds on a number that has no better direction."""
    for name in config.max_degradation:
        if higher_is_better(name, target) is None:
            raise UsageError(
                f"params.yaml gate.max_degradation.{name}: {name} has no better direction, "
                "so a change in it cannot be judged; bound it under gate.minimum/maximum"
            )


def absolute_checks(metrics: Mapping[str, float], config: GateConfig) -> list[Check]:
    """gate.minimum and gate.maximum: the candidate alone against fixed bounds."""
    checks = [
        _compare(
            f"minimum.{name}", "minimum", metrics.get(name), ">=", bound, note=_note(metrics, name)
        )
        for name, bound in config.minimum.items()
    ]
    return checks + [
        _compare(
            f"maximum.{name}", "maximum", metrics.get(name), "<=", bound, note=_note(metrics, name)
        )
        for name, bound in config.maximum.items()
    ]


def baseline_checks(metrics: Mapping[str, float], target: str, config: GateConfig) -> list[Check]:
    """The target metric must beat each baseline named in gate.baseline_margin by its margin."""
    higher = METRICS[target].greater_is_better
    checks = []
    for baseline, margin in config.baseline_margin.items():
        reference = metrics.get(f"{BASELINE_PREFIX}{baseline}")
        bound = None if reference is None else reference + (margin if higher else -margin)
        checks.append(
            _compare(
                f"baseline_margin.{baseline}",
                "baseline",
                metrics.get(target),
                ">=" if higher else "<=",
                bound,
                note=f"{baseline} baseline's {target} {reference}, margin {margin}",
            )
        )
    return checks


def change_checks(
    metrics: Mapping[str, float],
    target: str,
    production: Manifest | None,
    config: GateConfig,
) -> list[Check]:
    """gate.max_degradation: no metric may get worse than production by more than allowed."""
    checks = []
    for name, tolerance in config.max_degradation.items():
        higher = bool(higher_is_better(name, target))
        operator: Literal[">=", "<="] = ">=" if higher else "<="
        label = f"max_degradation.{name}"
        reference = None if production is None else numeric_metrics(production.metrics).get(name)
        if reference is None:
            why = "no production model yet" if production is None else "production lacks it"
            checks.append(
                Check(
                    label,
                    "change",
                    metrics.get(name),
                    operator,
                    None,
                    "pass",
                    f"{why}: passes vacuously",
                )
            )
            continue
        bound = reference - tolerance if higher else reference + tolerance
        note = f"production {production.version if production else ''}: {reference}"
        checks.append(_compare(label, "change", metrics.get(name), operator, bound, note=note))
    return checks


def staleness_check(
    committed_at: datetime | None, now: datetime, config: GateConfig
) -> list[Check]:
    """gate.max_age_days: a model committed too long ago is refused.

    The age runs from the commit that first recorded the model's bytes in
    dvc.lock, a fact git keeps, rather than from a time stamp in an output,
    which would make every rerun's outputs differ. A model not committed yet is
    new (age 0).
    """
    if config.max_age_days is None:
        return []
    if committed_at is None:
        age, note = 0.0, "not committed yet"
    else:
        age = round((now - committed_at).total_seconds() / _SECONDS_PER_DAY, 2)
        note = f"committed at {committed_at.isoformat()}"
    return [_compare("max_age_days", "staleness", age, "<=", config.max_age_days, note=note)]


def _note(metrics: Mapping[str, float], name: str) -> str:
    if name in metrics:
        return ""
    return f"reports/metrics.json has no {name} (reports/evaluation.json says why)"


def _compare(
    name: str,
    kind: str,
    value: float | None,
    operator: Literal[">=", "<="],
    threshold: float | None,
    *,
    note: str = "",
) -> Check:
    if value is None or threshold is None:
        return Check(name, kind, value, operator, threshold, "fail", note)
    passed = value >= threshold if operator == ">=" else value <= threshold
    threshold = round(threshold, 6)
    return Check(name, kind, value, operator, threshold, "pass" if passed else "fail", note)


def judge(
    metrics: Mapping[str, float],
    target: str,
    production: Manifest | None,
    config: GateConfig,
) -> list[Check]:
    """Every check of the gate that the evaluated model decides, in params.yaml's order.

    Staleness is not one of them: a model the pipeline just made is new, and its
    age is judged when it is about to be promoted (`mlops gate --check`).
    """
    check_config(config, target)
    return [
        *absolute_checks(metrics, config),
        *baseline_checks(metrics, target, config),
        *change_checks(metrics, target, production, config),
    ]


def report(
    checks: Sequence[Check],
    target: str,
    candidate: Mapping[str, Any],
    production: Manifest | None,
) -> dict[str, Any]:
    """reports/gate.json: the verdict, what was compared, and every check."""
    failed = [c.name for c in checks if c.verdict == "fail"]
    return {
        "passed": not failed,
        "summary": _summary(checks, failed),
        "failed": failed,
        "metric": target,
        "candidate": dict(candidate),
        "production": None
        if production is None
        else {"version": production.version, "model_md5": production.model_md5},
        "checks": [asdict(c) for c in checks],
    }


def _summary(checks: Sequence[Check], failed: Sequence[str]) -> str:
    if not failed:
        return f"gate passed: all {len(checks)} checks"
    return f"gate failed: {len(failed)} of {len(checks)} checks ({', '.join(failed)})"


def markdown(result: Mapping[str, Any], slices: Mapping[str, Any] | None) -> str:
    """reports/gate.md: the verdict and every check, as a person reads it in a PR."""
    verdict = "PASSED" if result["passed"] else "FAILED"
    candidate, production = result["candidate"], result["production"]
    lines = [
        f"# Model gate: {verdict}",
        "",
        result["summary"] + ".",
        "",
        f"- Candidate: model md5 `{candidate.get('model_md5')}`, trained on data md5 "
        f"`{candidate.get('training_data_md5')}`",
        "- Production: "
        + (
            "none yet (change thresholds pass vacuously)"
            if production is None
            else f"{production['version']} (model md5 `{production['model_md5']}`)"
        ),
        "",
        "| Check | Value | Threshold | Verdict | Note |",
        "|---|---|---|---|---|",
    ]
    for check in result["checks"]:
        threshold = (
            "-" if check["threshold"] is None else f"{check['operator']} {check['threshold']}"
        )
        mark = "pass" if check["verdict"] == "pass" else "**FAIL**"
        value = _cell(check["value"])
        lines.append(f"| {check['name']} | {value} | {threshold} | {mark} | {check['note']} |")
    return "\n".join(lines + _slice_lines(result["metric"], slices)) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# The columns of every slice record; those between rows and value describe the slice
# and are the task's own (binary: positive and selection rates).
_SLICE_HEAD = ("attribute", "slice", "rows")
_SLICE_TAIL = ("value", "status")


def _slice_lines(metric: str, slices: Mapping[str, Any] | None) -> list[str]:
    if not slices:
        return []
    records = slices.get("slices", [])
    described = [k for k in (records[0] if records else {}) if k not in _SLICE_HEAD + _SLICE_TAIL]
    headers = ["Attribute", "Slice", "Rows", *(k.replace("_", " ").capitalize() for k in described)]
    lines = [
        "",
        f"## {metric} by slice",
        "",
        f"Worst: {slices.get('worst_slice')} ({_cell(slices.get('worst'))}); widest gap: "
        f"{slices.get('gap_attribute')} ({_cell(slices.get('gap'))}).",
        "",
        _row([*headers, metric, "Status"]),
        _row(["---"] * (len(headers) + 2)),
    ]
    for r in records:
        cells = [r["attribute"], r["slice"], str(r["rows"]), *(_cell(r[k]) for k in described)]
        lines.append(_row([*cells, _cell(r["value"]), r["status"]]))
    return lines


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
