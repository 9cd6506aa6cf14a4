"""Performance in production: realised once labels arrive, estimated before they do.

Realised: a labels file (request id -> actual, the target encoded as training
encoded it) is joined to the logged answers, and every metric of the task's
registry (``mlops.tasks.metrics``) is computed on the joined rows and compared with
the reference's test metrics: a metric worse than its test value by more than its
allowed degradation is a breach. The allowance is absolute and per metric, as the
gate's ``gate.max_degradation`` is (a metric in the target's units, RMSE, has no
task-free tolerance); a metric without one is reported, not judged.

Estimated, for classification, before any label: NannyML's confidence-based
performance estimation (CBPE; NannyML docs, "Estimation of Performance of the
Monitored Model"): when the model's probabilities are calibrated, row i's true
class is a draw from its predicted probabilities, so the metric to expect is a
function of those probabilities alone. NannyML works out the expected confusion
matrix (for every threshold, for ROC AUC) and computes the metric from it. Here the
labels themselves are drawn from the probabilities, ``draws`` times (seeded), and
every registry metric is computed on each draw with its own function: the mean is
the estimate (for accuracy, the expected value is exactly NannyML's, the mean
probability of the predicted class; for the ratio metrics the two agree as the
window grows), and the spread of the draws is the range the realised metric
should fall in if nothing but sampling changed. Any metric of the registry is
estimated this way without a formula of its own. As NannyML states, the estimate
holds under covariate shift but not concept drift (P(y | x) changing): only labels
reveal that. Regression has no estimate (NannyML's DLE needs a second model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops.errors import UsageError, shorten
from mlops.tasks.metrics import Prediction, get_metric, metrics_for
from mlops.tasks.task import Task

_EXAMPLES = 5


# Per metric, how much worse than its test value it may get (absolute, its own units).
Tolerance = Mapping[str, float]


def join_labels(
    request_ids: pd.Series,
    labels: pd.DataFrame,
    known: Sequence[Any] | None = None,
    what: str = "labels file",
) -> tuple[np.ndarray, pd.Series]:
    """(positions in ``request_ids`` that have a label, the labels' ``actual`` there).

    ``labels`` has columns ``request_id`` and ``actual``. A duplicate id, or an id that
    is not among ``known`` (default: ``request_ids``; pass every logged id when the
    labels may belong to rows outside the window), is a UsageError naming them: a
    label joined to the wrong row would silently corrupt the realised metrics.
    """
    missing = {"request_id", "actual"} - set(labels.columns)
    if missing:
        raise UsageError(f"{what}: missing column(s) {', '.join(sorted(missing))}")
    ids = labels["request_id"].astype(str)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise UsageError(
            f"{what}: {len(duplicated)} request id(s) given more than once: "
            f"{shorten(list(duplicated[:_EXAMPLES]))}"
        )
    logged = request_ids.astype(str)
    universe = set(logged) if known is None else {str(i) for i in known}
    unknown = ids[~ids.isin(universe)]
    if len(unknown):
        raise UsageError(
            f"{what}: {len(unknown)} request id(s) not in the prediction log: "
            f"{shorten(list(unknown[:_EXAMPLES]))}"
        )
    actual = labels.set_index(ids)["actual"]
    positions = np.flatnonzero(logged.isin(actual.index).to_numpy())
    return positions, actual.loc[logged.iloc[positions]].reset_index(drop=True)


def realised_performance(
    task: Task,
    prediction: Prediction,
    actual: np.ndarray,
    reference: Mapping[str, float | None],
    tolerance: Tolerance,
    *,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every metric ``names`` (default: the task's) on the labelled rows, each judged
    against its test value in ``reference``."""
    chosen = names or metrics_for(task.name)
    values = {name: get_metric(name, task.name)(actual, prediction) for name in chosen}
    return {"rows": len(actual), "metrics": _judged(values, reference, tolerance, task)}


def estimate_performance(
    task: Task,
    prediction: Prediction,
    reference: Mapping[str, float | None],
    tolerance: Tolerance,
    seed: int,
    *,
    names: Sequence[str] | None = None,
    draws: int = 50,
    max_rows: int = 20_000,
    level: float = 0.9,
) -> dict[str, Any] | None:
    """The metrics expected from the probabilities alone (None without probabilities:
    regression), with the central ``level`` range of the draws, judged like the realised
    ones. A window past ``max_rows`` is estimated on a seeded sample of that many rows:
    the estimate's own noise is then far below the tolerance."""
    if prediction.proba is None or not len(prediction.label):
        return None
    rng = np.random.default_rng(seed)
    rows = len(prediction.label)
    if rows > max_rows:
        prediction = prediction.take(np.sort(rng.choice(rows, size=max_rows, replace=False)))
    drawn = draw_labels(prediction, draws, rng)
    chosen = names or metrics_for(task.name)
    samples = {
        name: np.array([get_metric(name, task.name)(y, prediction) for y in drawn])
        for name in chosen
    }
    estimates = {
        name: float(np.nanmean(s)) if np.isfinite(s).any() else np.nan
        for name, s in samples.items()
    }
    judged = _judged(estimates, reference, tolerance, task)
    tail = (1 - level) / 2
    for name, s in samples.items():
        finite = s[np.isfinite(s)]
        low, high = np.quantile(finite, [tail, 1 - tail]) if finite.size else (np.nan, np.nan)
        judged[name] |= {"low": _plain(low), "high": _plain(high)}
    return {"rows": len(prediction.label), "draws": draws, "level": level, "metrics": judged}


def draw_labels(prediction: Prediction, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` label vectors, row i's label drawn from its predicted probabilities
    (inverse-CDF sampling over the class columns, all draws in one array operation)."""
    assert prediction.proba is not None
    cumulative = np.cumsum(prediction.proba, axis=1)
    uniform = rng.random((draws, len(prediction.label), 1))
    index = np.minimum((uniform > cumulative[None]).sum(axis=2), cumulative.shape[1] - 1)
    drawn: np.ndarray = np.asarray(prediction.classes)[index]
    return drawn


def _judged(
    values: Mapping[str, float],
    reference: Mapping[str, float | None],
    tolerance: Tolerance,
    task: Task,
) -> dict[str, dict[str, Any]]:
    judged = {}
    for name, value in values.items():
        metric = get_metric(name, task.name)
        test, allowed = reference.get(name), tolerance.get(name)
        breach = None
        if test is not None and allowed is not None and np.isfinite(value):
            # Positive when worse than the test value, whichever way the metric points.
            breach = bool(metric.sign * (test - value) > allowed)
        judged[name] = {
            "value": _plain(value),
            "reference": test,
            "tolerance": allowed,
            "breach": breach,
        } | ({} if np.isfinite(value) else {"why": "undefined on these rows"})
    return judged


def _plain(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
