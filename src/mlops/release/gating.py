"""The gate: is the candidate model good enough, and no worse than production?

Every check reads "value operator threshold" and has a verdict. Absolute
thresholds and baseline margins judge the candidate alone; change thresholds
compare it with the production model named in models/production.json, and
pass vacuously when there is none yet (as TFX's Evaluator does). Fairness
thresholds bound parity across the groups of each protected attribute, and a
group too small to measure is named and judged by gate.unmeasurable_groups.
Staleness bounds the model's age when it is promoted; the limit is configured
or derived from the measured decay (``age_limit``). A failed gate is a result,
written like a passed one.

Thresholds are relative to what the data allows: a null threshold is a check
switched off (reported as off, never failing), a baseline margin never asks for
more than half the room the baseline leaves to the metric's best value, and
when the tuned model is the linear baseline's own family the margin is a
tolerance, since the search may rightly end where the baseline started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from mlops.config import GateConfig
from mlops.errors import UsageError
from mlops.release.registry import Manifest, numeric_metrics
from mlops.tasks.metrics import (
    BASELINE_PREFIX,
    MAJORITY_ACCURACY,
    MARGIN_NOISE_PREFIX,
    METRICS,
    REPORTED,
    Metric,
    report_direction,
)

_SECONDS_PER_DAY = 86400.0
_DIGITS = 6

Verdict = Literal["pass", "fail", "off"]
Operator = Literal[">=", "<="]
OFF = "switched off (null in params.yaml)"


@dataclass(frozen=True)
class Check:
    """One line of the gate: ``value operator threshold`` -> verdict ("off": its
    threshold is null, so it is listed but not judged)."""

    name: str
    kind: str
    value: float | None
    operator: Operator
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
    for name, tolerance in config.max_degradation.items():
        if tolerance is not None and higher_is_better(name, target) is None:
            raise UsageError(
                f"params.yaml gate.max_degradation.{name}: {name} has no better direction, "
                "so a change in it cannot be judged; bound it under gate.minimum/maximum"
            )


def absolute_checks(
    metrics: Mapping[str, float],
    config: GateConfig,
    unavailable: Mapping[str, str] | None = None,
    off: Mapping[str, str] | None = None,
) -> list[Check]:
    """gate.minimum and gate.maximum: the candidate alone against fixed bounds.

    ``unavailable`` is evaluation.json's reason for each number metrics.json lacks;
    a slice number lacking because no slice was measurable is judged by
    gate.unmeasurable_slices, a fairness number lacking because no protected group
    was large enough by gate.unmeasurable_groups. ``off``: numbers evaluate was told
    not to compute (e.g. evaluate.business.correlation_trials 0), and why: their
    checks are off, as a null threshold's.
    """
    sections: tuple[tuple[str, Mapping[str, float | None], Operator], ...] = (
        ("minimum", config.minimum, ">="),
        ("maximum", config.maximum, "<="),
    )
    checks = []
    for kind, bounds, operator in sections:
        for name, bound in bounds.items():
            label, value = f"{kind}.{name}", metrics.get(name)
            if bound is None:
                checks.append(Check(label, kind, value, operator, None, "off", OFF))
            elif value is None and name in (off or {}):
                checks.append(Check(label, kind, None, operator, bound, "off", (off or {})[name]))
            elif value is None and _policy(name, config) is not None:
                verdict, note = _unmeasurable(name, config, unavailable)
                checks.append(Check(label, kind, None, operator, bound, verdict, note))
            else:
                judged, raised = _above_noise(metrics, name, kind, bound)
                note = raised or _note(metrics, name, unavailable)
                checks.append(_compare(label, kind, value, operator, judged, note=note))
    return checks


def _above_noise(
    metrics: Mapping[str, float], name: str, kind: str, bound: float
) -> tuple[float, str]:
    """A maximum below what chance alone gives the number on the test split (its
    ``Reported.noise``) raised to that, and the note saying so ("": as written): a
    bound only noise can fail is no evidence against the model."""
    reported = REPORTED.get(name)
    noise_name = reported.noise if reported else None
    noise = metrics.get(noise_name) if noise_name else None
    if kind != "maximum" or noise is None or noise <= bound:
        return bound, ""
    return noise, (
        f"bound {_cell(bound)} raised to {_cell(noise)} ({noise_name} in reports/metrics.json): "
        f"the {name} chance alone reaches on this many test rows (more test rows lower it)"
    )


# Per section of evaluate's numbers: the gate's policy key for a number that could not be
# measured (too few rows), and what to change instead.
_POLICIES = {
    "slices": (
        "unmeasurable_slices",
        "lower evaluate.slices.min_rows, slice by other columns",
    ),
    "fairness": (
        "unmeasurable_groups",
        "lower evaluate.fairness.min_rows or min_positives, gather more rows of the group",
    ),
}


def _policy(name: str, config: GateConfig) -> tuple[str, str] | None:
    """The policy key and its value for a number measured per group (None: not one)."""
    reported = REPORTED.get(name)
    if reported is None or reported.section not in _POLICIES:
        return None
    key = _POLICIES[reported.section][0]
    return key, getattr(config, key)


def _unmeasurable(
    name: str, config: GateConfig, unavailable: Mapping[str, str] | None
) -> tuple[Verdict, str]:
    """A slice or fairness threshold with no group to judge: the section's policy decides."""
    reported = REPORTED[name]
    key, advice = _POLICIES[str(reported.section)]
    why = _note({}, name, unavailable)
    if getattr(config, key) == "pass":
        return "pass", f"{why}; passes (gate.{key}: pass)"
    return "fail", f"{why}; fails (gate.{key}: fail): {advice}, or set gate.{key}: pass"


# The gate's check of the protected groups too small to measure.
GROUPS_CHECK = "fairness.unmeasurable_groups"


def groups_check(fairness: Mapping[str, Any] | None, config: GateConfig) -> list[Check]:
    """Each protected group too small to measure is named; gate.unmeasurable_groups says
    whether that fails the gate. None when no fairness threshold is set: nothing judged
    needs the groups."""
    names = [
        n
        for section in (config.minimum, config.maximum)
        for n, bound in section.items()
        if bound is not None and (REPORTED.get(n) and REPORTED[n].section == "fairness")
    ]
    small = list((fairness or {}).get("too_small") or [])
    if not names:
        return []
    listed = "; ".join(f"{g['group']} ({g['reason']})" for g in small[:8])
    more = f"; and {len(small) - 8} more (reports/evaluation.json fairness.too_small)"
    listed += more if len(small) > 8 else ""
    if not small:
        return [_compare(GROUPS_CHECK, "fairness", 0.0, "<=", 0.0, note="every group measured")]
    if config.unmeasurable_groups == "pass":
        note = f"too small to measure: {listed}; passes (gate.unmeasurable_groups: pass)"
        # No threshold shown: under this policy no count of small groups fails the gate.
        return [Check(GROUPS_CHECK, "fairness", float(len(small)), "<=", None, "pass", note)]
    note = f"too small to measure: {listed}; fails (gate.unmeasurable_groups: fail)"
    return [_compare(GROUPS_CHECK, "fairness", float(len(small)), "<=", 0.0, note=note)]


def baseline_checks(
    metrics: Mapping[str, float],
    target: str,
    config: GateConfig,
    own_baseline: str | None = None,
) -> list[Check]:
    """The target metric must beat each baseline named in gate.baseline_margin by the
    gain it can still make (``required_gain``).

    ``own_baseline``: the baseline of the tuned model's own family (the linear one
    when the search picked it), which the model need only match within the margin.
    """
    metric = METRICS[target]
    operator: Operator = ">=" if metric.greater_is_better else "<="
    checks = []
    for baseline, margin in config.baseline_margin.items():
        label, value = f"baseline_margin.{baseline}", metrics.get(target)
        if margin is None:
            checks.append(Check(label, "baseline", value, operator, None, "off", OFF))
            continue
        reference = metrics.get(f"{BASELINE_PREFIX}{baseline}")
        if reference is None:
            note = f"reports/metrics.json has no {BASELINE_PREFIX}{baseline}"
            checks.append(_compare(label, "baseline", value, operator, None, note=note))
            continue
        gain, how = required_gain(metric, reference, margin, own=baseline == own_baseline)
        bound = reference + metric.sign * gain
        note = f"{baseline} baseline's {target} {reference}; {how}"
        noise = metrics.get(f"{MARGIN_NOISE_PREFIX}{baseline}")
        if value is not None and noise and metric.sign * (value - bound) < 0:
            bound -= metric.sign * noise
            note += (
                f"; bound eased by {_cell(noise)} ({MARGIN_NOISE_PREFIX}{baseline} in "
                "reports/metrics.json): the shortfall chance alone can show on this many "
                "test rows (more test rows lower it)"
            )
        checks.append(_compare(label, "baseline", value, operator, bound, note=note))
    return checks


def required_gain(
    metric: Metric, reference: float, margin: float, *, own: bool
) -> tuple[float, str]:
    """How much better than a baseline scoring ``reference`` the model must be, and how
    that was derived, for the report.

    A margin is satisfiable only if the metric has room for it: at most half the
    headroom between the baseline and the metric's best value is asked (0.996 ROC
    AUC leaves 0.004, so 0.002 is required, not 0.01). For the baseline of the
    model's own family the margin becomes a tolerance: the model may trail it by
    up to the margin (a tuned model of the same family is expected to tie it).
    """
    if own:
        return -abs(margin), (
            f"the tuned model is of this baseline's family, so the margin {margin:g} is a "
            f"tolerance: it may trail the baseline by up to {abs(margin):g}"
        )
    headroom = metric.headroom(reference)
    if headroom is not None and headroom / 2 < margin:
        gain = round(headroom / 2, _DIGITS)
        return gain, (
            f"required gain {gain:g}: the margin {margin:g} asks for more than half the "
            f"headroom {round(headroom, _DIGITS):g} to the best {metric.name} {metric.best:g}"
        )
    return margin, f"margin {margin:g}"


def change_checks(
    metrics: Mapping[str, float],
    target: str,
    production: Manifest | None,
    config: GateConfig,
) -> list[Check]:
    """gate.max_degradation: no metric may get worse than production by more than allowed."""
    checks = []
    for name, tolerance in config.max_degradation.items():
        label = f"max_degradation.{name}"
        if tolerance is None:
            direction = higher_is_better(name, target)
            off_operator: Operator = "<=" if direction is False else ">="
            checks.append(Check(label, "change", metrics.get(name), off_operator, None, "off", OFF))
            continue
        higher = bool(higher_is_better(name, target))
        operator: Operator = ">=" if higher else "<="
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


def age_limit(
    config: GateConfig, staleness: Mapping[str, Any] | None, target: str
) -> dict[str, Any]:
    """The model's age limit in days (None: no limit) and where it came from.

    gate.max_age_days a number: that number (the measurement, if any, is cited);
    ``measured``: the days until the target metric is expected to fall by its
    tolerance, at the fastest decay evaluation.json's staleness windows cannot
    rule out. The tolerance is the smaller of gate.max_degradation's for the
    metric and the room above gate.minimum's (below gate.maximum's, for a loss).
    Nothing measured (no time order, no decay even at the bound, no tolerance):
    gate.unmeasured_age_days, saying why.
    """
    measured = dict(staleness or {})
    fit = measured.get("fit") if measured.get("available") else None
    cited = f"; measured decay {fit['decay_per_day']:g} per day" if fit else ""
    if config.max_age_days is None:
        return {"days": None, "source": f"gate.max_age_days is null (no limit){cited}"}
    if config.max_age_days != "measured":
        return {"days": float(config.max_age_days), "source": f"gate.max_age_days{cited}"}
    fallback = config.unmeasured_age_days
    unmeasured = f"gate.unmeasured_age_days ({fallback})"
    if not fit:
        why = measured.get("reason") or "reports/evaluation.json has no staleness measurement"
        return {"days": fallback, "source": f"{unmeasured}: {why}"}
    metric = METRICS[target]
    tolerances = [config.max_degradation.get(target)]
    bound = (config.minimum if metric.greater_is_better else config.maximum).get(target)
    if bound is not None:
        tolerances.append(metric.sign * (fit["at_age_0"] - bound))
    room = [t for t in tolerances if t is not None and t > 0]
    if not room:
        why = f"no room for {target} to fall (gate.max_degradation / gate.minimum / maximum)"
        return {"days": fallback, "source": f"{unmeasured}: {why}"}
    decay = fit["decay_bound_per_day"]
    if decay <= 0:
        why = f"no decay of {target} even at the {measured.get('confidence')} bound"
        return {"days": fallback, "source": f"{unmeasured}: {why}"}
    days = round(min(room) / decay, 1)
    return {
        "days": days,
        "source": f"measured: {target} falls by {min(room):g} in {days:g} days at "
        f"{decay:g} per day (the {measured.get('confidence')} bound of the decay over "
        f"{len(measured.get('windows', []))} windows of {measured.get('source')})",
    }


def staleness_check(
    committed_at: datetime | None, now: datetime, limit: Mapping[str, Any]
) -> list[Check]:
    """The age limit (``age_limit``): a model committed too long ago is refused.

    The age runs from the commit that first recorded the model's bytes in
    dvc.lock, a fact git keeps, rather than from a time stamp in an output,
    which would make every rerun's outputs differ. A model not committed yet is
    new (age 0).
    """
    if limit.get("days") is None:
        return []
    if committed_at is None:
        age, note = 0.0, "not committed yet"
    else:
        age = round((now - committed_at).total_seconds() / _SECONDS_PER_DAY, 2)
        note = f"committed at {committed_at.isoformat()}"
    note += f"; limit from {limit.get('source')}"
    return [_compare("max_age_days", "staleness", age, "<=", limit["days"], note=note)]


def _note(metrics: Mapping[str, float], name: str, unavailable: Mapping[str, str] | None) -> str:
    """Why a number is missing, in evaluation.json's words where it gives them."""
    if name in metrics:
        return ""
    why = (unavailable or {}).get(name)
    if why:
        return f"reports/metrics.json has no {name}: {why}"
    return f"reports/metrics.json has no {name} (reports/evaluation.json says why)"


def _compare(
    name: str,
    kind: str,
    value: float | None,
    operator: Operator,
    threshold: float | None,
    *,
    note: str = "",
) -> Check:
    if value is None or threshold is None:
        return Check(name, kind, value, operator, threshold, "fail", note)
    # Rounded as metrics.json's numbers are, so float noise in "baseline + margin" cannot
    # fail a value equal to it.
    threshold = round(threshold, _DIGITS)
    passed = value >= threshold if operator == ">=" else value <= threshold
    return Check(name, kind, value, operator, threshold, "pass" if passed else "fail", note)


def judge(
    metrics: Mapping[str, float],
    target: str,
    production: Manifest | None,
    config: GateConfig,
    *,
    unavailable: Mapping[str, str] | None = None,
    own_baseline: str | None = None,
    fairness: Mapping[str, Any] | None = None,
    off: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every check of the gate that the evaluated model decides, in params.yaml's order,
    those switched off included (verdict "off").

    Staleness is not one of them: a model the pipeline just made is new, and its
    age is judged when it is about to be promoted (`mlops gate --check`).
    ``unavailable``: evaluation.json's reasons for missing numbers;
    ``own_baseline``: the baseline of the tuned model's family (``baseline_checks``);
    ``fairness``: evaluation.json's fairness section (the groups too small, named);
    ``off``: numbers evaluate was told not to compute, and why (``absolute_checks``).
    """
    check_config(config, target)
    return [
        *_worst_named(absolute_checks(metrics, config, unavailable, off), fairness),
        *groups_check(fairness, config),
        *baseline_checks(metrics, target, config, own_baseline),
        *change_checks(metrics, target, production, config),
    ]


def _worst_named(checks: Sequence[Check], fairness: Mapping[str, Any] | None) -> list[Check]:
    """Each judged fairness check's note says which attribute (and class) is the worst."""
    worst = (fairness or {}).get("worst") or {}
    named = []
    for check in checks:
        number = worst.get(check.name.partition(".")[2]) or {}
        where = f"worst: {number.get('attribute')}, class {number.get('class')}"
        if check.verdict == "off" or number.get("attribute") is None:
            named.append(check)
        else:
            named.append(replace(check, note=f"{where}; {check.note}" if check.note else where))
    return named


# The checks a miscalibrated or majority-beaten classifier fails: where the advice goes.
_IMBALANCE_CHECKS = ("maximum.ece", "minimum.accuracy", "minimum.balanced_accuracy")


def imbalance_advice(
    metrics: Mapping[str, float],
    checks: Sequence[Check],
    *,
    tune_metric: str,
    family: str | None,
    params: Mapping[str, Any],
    calibration: str | None = None,
) -> str | None:
    """What to change when a classifier is less accurate than always predicting the
    majority class, or its calibration fails the gate (None: neither happened).

    Both are what a search for ranking (ROC AUC) with ``class_weight: balanced`` on
    a rare positive class produces: the weights shift every probability towards
    the rare class. ``family`` and ``params`` are the tuned model's, ``calibration``
    the method its probabilities were refitted by (the model card; None: not).
    """
    accuracy, majority = metrics.get("accuracy"), metrics.get(MAJORITY_ACCURACY)
    symptoms = []
    if accuracy is not None and majority is not None and accuracy < majority:
        symptoms.append(
            f"accuracy {accuracy:g} is below always predicting the majority class ({majority:g})"
        )
    symptoms += [
        f"ECE {_cell(c.value)} fails {c.name} {c.threshold}"
        for c in checks
        if c.name == "maximum.ece" and c.verdict == "fail"
    ]
    if not symptoms:
        return None
    fixes = []
    if params.get("class_weight") == "balanced":
        fixes.append(
            f"remove balanced from tune.space.{family}.class_weight (or tune.fixed): the "
            "tuned model reweights the classes, which skews its probabilities"
        )
    tuned = METRICS[tune_metric]
    proper = [m.name for m in METRICS.values() if m.proper and tuned.tasks <= m.tasks]
    if proper and not tuned.proper:
        fixes.append(
            f"tune on {' or '.join(proper)} (tune.metric, now "
            f"{tune_metric}, which does not reward calibrated probabilities)"
        )
    if not fixes and calibration is None:
        fixes.append(
            "calibrate the model's probabilities (train.calibration: sigmoid) "
            "or give tuning more trials"
        )
    elif not fixes:
        fixes.append(
            f"give tuning more trials (the probabilities are refitted by {calibration} "
            "already), or the test split more rows"
        )
    return f"{' and '.join(symptoms)}: {'; or '.join(fixes)}; see reports/plots/calibration.png"


def with_advice(checks: Sequence[Check], advice: str | None) -> list[Check]:
    """``checks`` with ``advice`` added to the note of each failing check it answers."""
    if advice is None:
        return list(checks)
    return [
        replace(c, note=f"{c.note}; {advice}" if c.note else advice)
        if c.name in _IMBALANCE_CHECKS and c.verdict == "fail"
        else c
        for c in checks
    ]


def report(
    checks: Sequence[Check],
    target: str,
    candidate: Mapping[str, Any],
    production: Manifest | None,
    advice: str | None = None,
    *,
    limit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """reports/gate.json: the verdict, what was compared, and every check; the checks
    switched off are listed apart (``off``), so ``checks`` holds only what was judged.
    ``advice``: what to change (``imbalance_advice``), when there is something to say;
    ``limit``: the age limit `gate --check` applies at promotion (``age_limit``)."""
    judged = [c for c in checks if c.verdict != "off"]
    failed = [c.name for c in judged if c.verdict == "fail"]
    off = [c for c in checks if c.verdict == "off"]
    return {
        "passed": not failed,
        "summary": _summary(judged, failed, len(off)),
        "failed": failed,
        "metric": target,
        "candidate": dict(candidate),
        "production": None
        if production is None
        else {"version": production.version, "model_md5": production.model_md5},
        "checks": [asdict(c) for c in judged],
        **({"off": [asdict(c) for c in off]} if off else {}),
        **({"advice": advice} if advice else {}),
        **({"age_limit": dict(limit)} if limit is not None else {}),
    }


def _summary(checks: Sequence[Check], failed: Sequence[str], off: int) -> str:
    switched_off = f", {off} switched off" if off else ""
    if not failed:
        return f"gate passed: all {len(checks)} checks{switched_off}"
    return f"gate failed: {len(failed)} of {len(checks)} checks{switched_off} ({', '.join(failed)})"


def markdown(
    result: Mapping[str, Any],
    slices: Mapping[str, Any] | None,
    fairness: Mapping[str, Any] | None = None,
) -> str:
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
    for check in [*result["checks"], *result.get("off", [])]:
        threshold = (
            "-" if check["threshold"] is None else f"{check['operator']} {check['threshold']}"
        )
        mark = {"pass": "pass", "off": "off"}.get(check["verdict"], "**FAIL**")
        value = _cell(check["value"])
        lines.append(f"| {check['name']} | {value} | {threshold} | {mark} | {check['note']} |")
    if result.get("advice"):
        lines += ["", "## What to change", "", result["advice"] + "."]
    limit = result.get("age_limit")
    if limit is not None:
        days = "none" if limit["days"] is None else f"{limit['days']:g} days"
        lines += [
            "",
            f"Age limit at promotion (`mlops gate --check`): {days}, from {limit['source']}.",
        ]
    lines += _slice_lines(result["metric"], slices) + _fairness_lines(fairness)
    return "\n".join(lines) + "\n"


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
    if not records:
        return [
            "",
            f"## {metric} by slice",
            "",
            "No slices measured: name columns in evaluate.slices.columns (or numeric ones with "
            "band edges in evaluate.slices.bands) to see the model per group.",
        ]
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


def _fairness_lines(fairness: Mapping[str, Any] | None) -> list[str]:
    """Per protected attribute (and class), the parity numbers; the groups too small to
    measure; the features that act as proxies for a protected attribute."""
    if not fairness or not fairness.get("protected"):
        return []
    names = list(fairness.get("worst") or {})
    lines = [
        "",
        f"## Fairness across protected groups ({', '.join(fairness['protected'])})",
        "",
        _row(["Attribute", "Class", *names]),
        _row(["---"] * (len(names) + 2)),
    ]
    for a in fairness.get("attributes", []):
        klass = "-" if a.get("class") is None else str(a["class"])
        lines.append(_row([a["attribute"], klass, *(_cell(a.get(n)) for n in names)]))
    small = fairness.get("too_small") or []
    if small:
        lines += ["", f"Too small to measure ({len(small)}, gate.unmeasurable_groups decides):"]
        lines += [f"- {g['group']}: {g['reason']}" for g in small]
    found = (fairness.get("proxies") or {}).get("proxies") or []
    threshold = (fairness.get("proxies") or {}).get("threshold")
    lines += [
        "",
        f"Proxies (normalised mutual information >= {threshold}): "
        + (
            ", ".join(f"{p['feature']} for {p['attribute']} ({p['nmi']:g})" for p in found)
            if found
            else "none"
        ),
    ]
    return lines
