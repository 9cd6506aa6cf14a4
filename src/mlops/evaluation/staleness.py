"""Staleness, measured: how fast the target metric falls as the data gets older.

The model is scored on data ordered by time, in windows of equal rows, and a
straight line is fitted to the metric against each window's age in days. The
age limit follows from the fastest decay the windows cannot rule out (the
slope's one-sided bound at evaluate.staleness.confidence), so a few noisy
windows give a cautious limit rather than none; the gate turns it into days
(release.gating.age_limit) with its own tolerance for a fall.

Where the order comes from:
- a time column (evaluate.staleness.time_column): the test split's rows in time
  order, each window's age its median time minus the training split's latest;
- otherwise a held-out stream (evaluate.staleness.stream), replayed in file order
  as later data, window i standing for the i-th period of window_days. Its ages
  are then assumed, not observed: the demo's Adult rows carry no dates, so the
  replay measures how much the metric moves from one batch of unseen rows to the
  next (sampling noise plus any order the file has), not decay over real time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlops.config import StalenessConfig
from mlops.data.splitting import as_times
from mlops.errors import UsageError
from mlops.tasks.metrics import Metric, Prediction

_DIGITS = 6
_SECONDS_PER_DAY = 86400.0
# A straight line through fewer windows says nothing about its slope's error.
MIN_WINDOWS = 3


def time_ages(test: pd.DataFrame, train: pd.DataFrame, column: str) -> np.ndarray:
    """Each test row's age in days: its time minus the training split's latest time."""
    for name, frame in (("test", test), ("training", train)):
        if column not in frame.columns:
            raise UsageError(
                f"params.yaml evaluate.staleness.time_column: no column {column!r} in the "
                f"{name} split"
            )
    what = "params.yaml evaluate.staleness.time_column (else split.time)"
    times, latest = as_times(test[column], what), as_times(train[column], what).max()
    return np.asarray((times - latest).dt.total_seconds() / _SECONDS_PER_DAY, dtype=float)


def stream_ages(rows: int, windows: int, window_days: float) -> np.ndarray:
    """A replayed stream's assumed ages: window i (from 1) is the i-th period of
    ``window_days`` after training, each row at its window's middle."""
    index = np.concatenate(
        [np.full(len(part), i) for i, part in enumerate(np.array_split(np.arange(rows), windows))]
    )
    return (index + 0.5) * window_days


def measure_decay(
    y_true: np.ndarray,
    prediction: Prediction,
    ages: np.ndarray,
    *,
    metric: Metric,
    config: StalenessConfig,
    source: str,
) -> dict[str, Any]:
    """The metric per window of rows in age order, and the fitted decay per day."""
    order = np.argsort(ages, kind="stable")
    windows = []
    for part in np.array_split(order, config.windows):
        if len(part) == 0:
            continue
        value = metric(y_true[part], prediction.take(part))
        windows.append(
            {
                "rows": len(part),
                "age_days": round(float(np.median(ages[part])), 2),
                metric.name: None if np.isnan(value) else round(float(value), _DIGITS),
            }
        )
    result: dict[str, Any] = {
        "available": True,
        "source": source,
        "metric": metric.name,
        "confidence": config.confidence,
        "windows": windows,
    }
    scored = [w for w in windows if w[metric.name] is not None]
    ages_scored = [w["age_days"] for w in scored]
    if len(scored) < MIN_WINDOWS or len(set(ages_scored)) < 2:
        return result | {
            "fit": None,
            "reason": f"{len(scored)} window(s) with distinct ages and a defined "
            f"{metric.name}; a decay needs at least {MIN_WINDOWS}",
        }
    fit = stats.linregress(ages_scored, [w[metric.name] for w in scored])
    # Oriented so that a negative slope is a decay whatever the metric's direction.
    slope = metric.sign * float(fit.slope)
    t = float(stats.t.ppf(config.confidence, len(scored) - 2))
    return result | {
        "fit": {
            "decay_per_day": round(-slope, 9),
            "stderr_per_day": round(float(fit.stderr), 9),
            # The fastest decay the windows cannot rule out: the limit is derived from it.
            "decay_bound_per_day": round(-slope + t * float(fit.stderr), 9),
            "at_age_0": round(float(fit.intercept), _DIGITS),
            "p_value": round(float(fit.pvalue), 6),
        }
    }


def unavailable(reason: str) -> dict[str, Any]:
    """evaluation.json's staleness section when nothing orders the data in time."""
    return {"available": False, "reason": reason}
