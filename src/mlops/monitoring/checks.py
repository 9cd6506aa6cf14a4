"""The findings of ``mlops monitor``: a window of logged rows judged against the reference.

Each check is a pure function returning one ``Finding``: which check, whether it
is breached, one line for people and the evidence a response policy reads
(``mlops respond`` maps findings to actions, so the evidence keys are an
interface; see each function). The checks only read the window, the reference
profile and plain values the stage gathered (labels, times, limits), so they run
where the logs are, without the training data or the DVC cache.

A check that cannot judge (no labels yet, no latency logged, no baseline, a
regression model with no probabilities to estimate from) says so in its summary
and is not breached: missing evidence is no alarm, and the report shows what was
not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import MonitorConfig
from mlops.monitoring.drift import Thresholds, feature_drift, prediction_drift
from mlops.monitoring.findings import Check
from mlops.monitoring.logs import LogWindow
from mlops.monitoring.performance import estimate_performance, realised_performance
from mlops.monitoring.reference import category_keys
from mlops.monitoring.stability import is_probability
from mlops.monitoring.stability import stability as output_stability
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import Task

_SECONDS_PER_DAY = 86_400.0
_EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    check: Check
    breach: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "breach": self.breach,
            "summary": self.summary,
            "evidence": plain(self.evidence),
        }


def plain(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars as Python numbers, NaN and infinity as null."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def thresholds(config: MonitorConfig) -> Thresholds:
    drift = config.drift
    return Thresholds(
        p_value=drift.p_value,
        distance=drift.distance,
        share=drift.share,
        features={
            name: {str(k): v for k, v in override.items()}
            for name, override in drift.features.items()
        },
    )


# --- input quality ---------------------------------------------------------------


def input_quality(
    window: LogWindow, reference: Mapping[str, Any], config: MonitorConfig
) -> Finding:
    """Inputs broken upstream: a feature null in every row (the reference had values), a
    null rate up by more than ``max_null_increase``, categories the reference never saw
    in more than ``max_unseen_rate`` of a feature's values, a feature whose typical size
    moved by ``scale_factor`` or more (units changed: metres became millimetres), and
    refused requests above ``max_refused_rate`` of everything logged. Evidence:
    ``all_null``, ``refused_rate``, ``unseen`` {name: [values]}, ``scale_changed``."""
    limits = config.input_quality
    profiles: Mapping[str, Any] = reference["features"]
    all_null, null_up, unseen, unseen_rates, scales = [], {}, {}, {}, {}
    for name, profile in profiles.items():
        values = window.inputs[name]
        rate, before = float(values.isna().mean()), float(profile["null_rate"])
        if rate == 1.0 and before < 1.0:
            all_null.append(name)
        elif rate - before > limits.max_null_increase:
            null_up[name] = {"window": rate, "reference": before}
        new, share = _unseen(values, profile)
        if new:
            unseen[name], unseen_rates[name] = new, share
        ratio = _size_ratio(values, profile)
        if ratio is not None:
            scales[name] = ratio
    scale_changed = [
        n for n, r in scales.items() if r >= limits.scale_factor or r <= 1 / limits.scale_factor
    ]
    counts = window.counts
    # By rows: a batch refused whole weighs its rows, not one request.
    refused_rate = counts.refused_rows / max(counts.refused_rows + counts.rows, 1)
    problems = _quality_problems(
        all_null,
        null_up,
        [n for n, s in unseen_rates.items() if s > limits.max_unseen_rate],
        scale_changed,
        refused_rate if refused_rate > limits.max_refused_rate else None,
    )
    evidence = {
        "all_null": all_null,
        "refused_rate": refused_rate,
        # The limit is the monitor's (monitor.input_quality); respond acts on this verdict.
        "refused_rate_breach": refused_rate > limits.max_refused_rate,
        "max_refused_rate": limits.max_refused_rate,
        "refused": counts.refused,
        "refused_rows": counts.refused_rows,
        "refused_reasons": counts.refused_reasons,
        "unseen": unseen,
        "unseen_rate": unseen_rates,
        "scale_changed": scale_changed,
        "size_ratio": {n: scales[n] for n in scale_changed},
        "null_rate_up": null_up,
        "corrupt_lines": counts.corrupt,
    }
    summary = "; ".join(problems) if problems else "inputs as the reference's"
    return Finding("input_quality", bool(problems), summary, evidence)


def _unseen(values: pd.Series, profile: Mapping[str, Any]) -> tuple[list[str], float]:
    """(a few categories the reference never saw, their share of the values); none when
    the reference lists only its commonest categories (an "other" share)."""
    if "frequencies" not in profile or profile.get("other", 0.0) > 0:
        return [], 0.0
    keys = category_keys(values)
    new = keys[~keys.isin(list(profile["frequencies"]))]
    if new.empty:
        return [], 0.0
    return [str(v) for v in new.value_counts().index[:_EXAMPLES]], len(new) / len(keys)


def _size_ratio(values: pd.Series, profile: Mapping[str, Any]) -> float | None:
    """The window's typical size over the reference's: the root mean square, which a
    change of units scales exactly and which, unlike the median or a quantile, neither
    vanishes for a centred feature nor jumps for a mostly-zero one (capital gains).
    None when either is zero (no size to compare: zeros stay zeros in any unit) or the
    feature is no number."""
    if "std" not in profile:
        return None
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    before = float(np.hypot(profile["mean"], profile["std"]))
    now = float(np.sqrt(np.mean(numbers**2))) if numbers.size else 0.0
    return now / before if before > 0 and now > 0 else None


def _quality_problems(
    all_null: Sequence[str],
    null_up: Mapping[str, Any],
    unseen: Sequence[str],
    scale_changed: Sequence[str],
    refused_rate: float | None,
) -> list[str]:
    parts = [f"null in every row: {', '.join(all_null)}"] if all_null else []
    parts += [f"null rate up: {', '.join(null_up)}"] if null_up else []
    parts += [f"unseen categories: {', '.join(unseen)}"] if unseen else []
    parts += [f"units changed: {', '.join(scale_changed)}"] if scale_changed else []
    parts += [f"refused {refused_rate:.1%} of requests"] if refused_rate is not None else []
    return parts


# --- drift -------------------------------------------------------------------------


def drift(window: LogWindow, reference: Mapping[str, Any], limits: Thresholds) -> Finding:
    """Per-feature drift and the dataset verdict (the share of drifted features).
    Evidence: ``share``, ``drifted`` [names], and each feature's test."""
    found = feature_drift(window.inputs, reference, limits)
    drifted = list(found["drifted_features"])
    summary = (
        f"{len(drifted)} of {found['tested']} features drifted ({found['share']:.0%}, "
        f"threshold {found['share_threshold']:.0%})"
        + (f": {', '.join(drifted[:_EXAMPLES])}" if drifted else "")
    )
    evidence = {
        "share": found["share"],
        "share_threshold": found["share_threshold"],
        "drifted": drifted,
        "tested": found["tested"],
        "features": found["features"],
    }
    return Finding("drift", bool(found["drifted"]), summary, evidence)


def prediction_drift_finding(
    window: LogWindow, reference: Mapping[str, Any], limits: Thresholds
) -> Finding:
    """The model's answers against its answers on held-out rows (the task's drift column
    decides). Evidence: ``column``, ``test``, ``score``, ``threshold``, ``psi``."""
    found = prediction_drift(window.outputs, reference, limits)
    column = found["drift_column"]
    verdict = found["columns"][column]
    if verdict["drifted"] is None:
        summary = f"{column}: not tested ({verdict.get('why', 'no values')})"
    else:
        summary = (
            f"{column}: {verdict['test']} {verdict['score']:.3g} "
            f"(threshold {verdict['threshold']:.3g}), PSI {verdict['psi']:.3g}"
            + (" - drifted" if verdict["drifted"] else "")
        )
    evidence = {
        "column": column,
        "test": verdict.get("test"),
        "score": verdict.get("score"),
        "threshold": verdict.get("threshold"),
        "psi": verdict.get("psi"),
        "columns": found["columns"],
    }
    return Finding("prediction_drift", bool(found["drifted"]), summary, evidence)


# --- performance -----------------------------------------------------------------


def scorable_rows(outputs: pd.DataFrame) -> np.ndarray:
    """Positions of rows a metric can score: every output present, its numbers finite and
    its probabilities in [0, 1]. The rest are stability's finding (a probability of 1.7
    is a broken model, not a log loss)."""
    scorable = outputs.notna().all(axis=1).to_numpy(dtype=bool, copy=True)
    for name in outputs.columns:
        if not (is_probability(str(name)) or pd.api.types.is_numeric_dtype(outputs[name])):
            continue
        numbers = pd.to_numeric(outputs[name], errors="coerce").to_numpy(dtype=float)
        scorable &= np.isfinite(numbers)
        if is_probability(str(name)):
            scorable &= (numbers >= 0) & (numbers <= 1)
    return np.flatnonzero(scorable)


def answers(task: Task, outputs: pd.DataFrame) -> Prediction:
    return task.from_columns({str(c): outputs[c].to_numpy() for c in outputs.columns})


def performance(
    task: Task,
    outputs: pd.DataFrame,
    actual: np.ndarray | None,
    reference: Mapping[str, Any],
    tolerance: Mapping[str, float],
    *,
    target: str,
    min_rows: int,
) -> Finding:
    """Realised metrics on the labelled rows (``outputs`` and ``actual`` aligned; None:
    no labels given) against the test metrics. Judged from ``min_rows`` labelled rows on.
    Evidence: ``metric`` (the first breached, else ``target``), ``value``, ``reference``,
    ``breach``, ``labelled_rows``, and every metric under ``metrics``."""
    rows = 0 if actual is None else len(actual)
    head = {"metric": target, "value": None, "reference": reference["metrics"].get(target)}
    if actual is None or rows < min_rows:
        why = "no labels given" if actual is None else f"{rows} labelled rows (< {min_rows})"
        evidence = head | {"breach": False, "labelled_rows": rows, "min_labelled_rows": min_rows}
        return Finding("performance", False, f"not judged: {why}", evidence)
    found = realised_performance(
        task, answers(task, outputs), actual, reference["metrics"], tolerance
    )
    metrics = found["metrics"]
    breached = [name for name, m in metrics.items() if m["breach"]]
    name = breached[0] if breached else target
    shown = metrics.get(name, {})
    evidence = {
        "metric": name,
        "value": shown.get("value"),
        "reference": shown.get("reference"),
        "breach": bool(breached),
        "labelled_rows": rows,
        "metrics": metrics,
    }
    return Finding("performance", bool(breached), _judged_summary(metrics, rows), evidence)


def estimated_performance(
    task: Task,
    outputs: pd.DataFrame,
    reference: Mapping[str, Any],
    tolerance: Mapping[str, float],
    seed: int,
    *,
    target: str,
    realised: Mapping[str, Any] | None,
) -> Finding:
    """Confidence-based performance estimation (NannyML's CBPE) from the model's
    probabilities of the ``target`` metric and those with a tolerance (each estimate
    costs ``draws`` metric computations: a million-row window's estimate of every
    metric took seconds), with the realised value beside each once labels are in
    (``realised``: the performance finding's ``metrics``). Evidence: ``metrics``."""
    names = list(dict.fromkeys([target, *tolerance]))
    found = estimate_performance(
        task, answers(task, outputs), reference["metrics"], tolerance, seed, names=names
    )
    if found is None:
        return Finding(
            "estimated_performance", False, "not estimated: the model gives no probabilities"
        )
    metrics = found["metrics"]
    for name, value in (realised or {}).items():
        if name in metrics:
            metrics[name]["realised"] = value.get("value")
    breached = [name for name, m in metrics.items() if m["breach"]]
    evidence = {"rows": found["rows"], "level": found["level"], "metrics": metrics}
    summary = "estimated " + _judged_summary(metrics, found["rows"])
    return Finding("estimated_performance", bool(breached), summary, evidence)


def _judged_summary(metrics: Mapping[str, Mapping[str, Any]], rows: int) -> str:
    judged = {n: m for n, m in metrics.items() if m["breach"] is not None}
    breached = [n for n, m in judged.items() if m["breach"]]
    shown = [
        f"{n} {_number(m['value'])} (test {_number(m['reference'])})"
        for n, m in judged.items()
        if not breached or n in breached
    ]
    verdict = "worse than allowed: " if breached else ""
    return f"{verdict}{', '.join(shown) or 'no metric judged'} on {rows} rows"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# --- stability, staleness, latency -----------------------------------------------


def stability(window: LogWindow, reference: Mapping[str, Any]) -> Finding:
    """NaN, infinite or implausible answers (probabilities outside [0, 1] or not summing
    to 1, values far outside the held-out range, unknown classes). Evidence: ``nan``,
    ``infinite``, ``out_of_range`` (rows, summed over the output columns)."""
    found = output_stability(window.outputs, reference)
    columns: Mapping[str, Mapping[str, int]] = found["columns"]
    nan = sum(c.get("nan", 0) + c.get("missing", 0) for c in columns.values())
    infinite = sum(c.get("infinite", 0) for c in columns.values())
    odd = ("out_of_range", "outside_0_1", "unknown_class")
    out_of_range = sum(c.get(k, 0) for c in columns.values() for k in odd)
    out_of_range += found.get("not_summing_to_1", 0)
    evidence = {
        "nan": nan,
        "infinite": infinite,
        "out_of_range": out_of_range,
        "rows": found["rows"],
        "columns": columns,
    }
    bad = {k: v for k, v in evidence.items() if k in ("nan", "infinite", "out_of_range") and v}
    summary = (
        ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in bad.items()) + " output value(s)"
        if bad
        else f"all {found['rows']} answers finite and in range"
    )
    return Finding("stability", not found["stable"], summary, evidence)


def staleness(
    model_since: datetime | None,
    data_since: datetime | None,
    now: datetime,
    config: MonitorConfig,
    basis: Mapping[str, str],
) -> Finding:
    """The production model's age and its training data's age (None: unknown, not
    judged) against ``max_model_age_days`` / ``max_data_age_days`` (None: off).
    ``basis`` says where each time came from. Evidence: ``model_age_days``,
    ``data_age_days``."""
    model_age, data_age = _days(model_since, now), _days(data_since, now)
    parts, breach = [], False
    for what, age, limit in (
        ("model", model_age, config.max_model_age_days),
        ("training data", data_age, config.max_data_age_days),
    ):
        if age is None:
            parts.append(f"{what} age unknown")
            continue
        old = limit is not None and age > limit
        breach |= old
        parts.append(
            f"{what} {age:.0f} days old" + (f" (limit {limit:g})" if limit is not None else "")
        )
    evidence = {
        "model_age_days": model_age,
        "data_age_days": data_age,
        "max_model_age_days": config.max_model_age_days,
        "max_data_age_days": config.max_data_age_days,
        "basis": dict(basis),
    }
    return Finding("staleness", breach, "; ".join(parts), evidence)


def _days(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round((now - since).total_seconds() / _SECONDS_PER_DAY, 2)


def latency(
    window: LogWindow, baseline: Mapping[str, float] | None, max_ratio: float | None
) -> Finding:
    """Serving latency p50 / p95 of the window's logged ``latency_ms`` against the
    baseline (the model's own single-row predict time, {"p50", "p95"}; None: none
    measured): breached when either is more than ``max_ratio`` times its baseline.
    Evidence: ``p50``, ``p95``, ``baseline_p50``, ``baseline_p95``."""
    times = pd.to_numeric(window.meta["latency_ms"], errors="coerce").to_numpy(dtype=float)
    times = times[np.isfinite(times)]
    baseline = baseline or {}
    evidence: dict[str, Any] = {
        "p50": None,
        "p95": None,
        "baseline_p50": baseline.get("p50"),
        "baseline_p95": baseline.get("p95"),
        "max_ratio": max_ratio,
        "rows": int(times.size),
    }
    if times.size == 0:
        return Finding("latency", False, "not logged", evidence)
    p50, p95 = (float(v) for v in np.percentile(times, [50, 95]))
    evidence |= {"p50": p50, "p95": p95}
    shown = f"p50 {p50:.3g} ms, p95 {p95:.3g} ms"
    if not baseline.get("p50") or not baseline.get("p95"):
        return Finding("latency", False, f"{shown}; no baseline measured", evidence)
    ratios = {"p50": p50 / baseline["p50"], "p95": p95 / baseline["p95"]}
    evidence["ratio"] = ratios
    slow = max_ratio is not None and max(ratios.values()) > max_ratio
    summary = f"{shown} (baseline {baseline['p50']:.3g} / {baseline['p95']:.3g} ms" + (
        f", limit x{max_ratio:g})" if max_ratio is not None else ")"
    )
    return Finding("latency", slow, summary, evidence)


# --- every check -------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """Labels joined to the window: the rows' positions in it and their encoded actuals."""

    positions: np.ndarray
    actual: np.ndarray


@dataclass(frozen=True)
class Ages:
    """Since when the production model and its training data exist (None: unknown),
    where each time came from, and now."""

    model_since: datetime | None
    data_since: datetime | None
    basis: Mapping[str, str]
    now: datetime


@dataclass(frozen=True)
class Facts:
    """What the checks read beyond the window and the reference, gathered by the stage:
    labels joined to the window (None: none given), the model's and its data's ages,
    the latency baseline ({"p50", "p95"} ms; None: none measured), the target metric."""

    labels: Labels | None
    ages: Ages
    latency_baseline: Mapping[str, float] | None
    target_metric: str


def findings(
    window: LogWindow,
    reference: Mapping[str, Any],
    task: Task,
    config: MonitorConfig,
    facts: Facts,
    *,
    seed: int,
) -> list[Finding]:
    """Every check on the window, in the order a person reads them: is the input sane,
    has it moved, has the model's answer moved, is it right, is it healthy, is it old."""
    limits = thresholds(config)
    ages = facts.ages
    staled = staleness(ages.model_since, ages.data_since, ages.now, config, ages.basis)
    if not window.counts.rows:  # every request refused: only the inputs and age say anything
        return _refused_only(input_quality(window, reference, config), staled, reference, facts)
    tolerance = config.performance.max_degradation.get(task.name, {})
    complete = scorable_rows(window.outputs)
    realised = _realised(
        task,
        window,
        reference,
        tolerance,
        labels=facts.labels,
        complete=complete,
        config=config,
        target_metric=facts.target_metric,
    )
    estimated = estimated_performance(
        task,
        window.outputs.iloc[complete],
        reference,
        tolerance,
        seed,
        target=facts.target_metric,
        realised=realised.evidence.get("metrics"),
    )
    return [
        input_quality(window, reference, config),
        drift(window, reference, limits),
        prediction_drift_finding(window, reference, limits),
        realised,
        estimated,
        stability(window, reference),
        staled,
        latency(window, facts.latency_baseline, config.max_latency_ratio),
    ]


def _refused_only(
    quality: Finding, staled: Finding, reference: Mapping[str, Any], facts: Facts
) -> list[Finding]:
    """The findings of a window whose every request was refused: the refused rate (1.0)
    and the ages; the checks of answers have none to judge."""
    why = "not judged: no answered rows (every request in the window was refused)"
    target = facts.target_metric
    performance = {"metric": target, "value": None, "reference": reference["metrics"].get(target)}
    return [
        quality,
        Finding("drift", False, why, {"share": None, "drifted": [], "features": {}}),
        Finding("prediction_drift", False, why),
        Finding("performance", False, why, performance | {"breach": False, "labelled_rows": 0}),
        Finding("estimated_performance", False, why, {"metrics": {}}),
        Finding("stability", False, why),
        staled,
        Finding("latency", False, why),
    ]


def _realised(
    task: Task,
    window: LogWindow,
    reference: Mapping[str, Any],
    tolerance: Mapping[str, float],
    *,
    labels: Labels | None,
    complete: np.ndarray,
    config: MonitorConfig,
    target_metric: str,
) -> Finding:
    outputs, actual = window.outputs, None
    if labels is not None:
        keep = np.isin(labels.positions, complete)
        outputs = window.outputs.iloc[labels.positions[keep]]
        actual = labels.actual[keep]
    return performance(
        task,
        outputs,
        actual,
        reference,
        tolerance,
        target=target_metric,
        min_rows=config.performance.min_labelled_rows,
    )
