"""Drift: is a window of production inputs (or answers) distributed as the reference?

The tests are the ones Evidently picks by default (``get_stattest`` in
evidently/calculations/stattests/registry.py; release notes of v0.1.50: "All tests
use a 0.95 confidence level by default ... All tests use a threshold = 0.1 by
default"), all from scipy:

- small data (<= 1,000 rows): numbers, the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``), drift when p < 0.05; categories, and numbers with at
  most 5 distinct values, Pearson's chi-squared goodness of fit of the window's
  counts against the reference shares (``scipy.stats.chisquare``, as Evidently's
  ``chi_stat_test``), drift when p < 0.05. (Evidently takes a two-proportion z-test
  for two categories; its square is this chi-squared statistic, same p-value.)
- larger data: numbers, the Wasserstein distance normed by the reference's standard
  deviation (``scipy.stats.wasserstein_distance`` / max(std, 0.001)), drift when
  >= 0.1; categories, the Jensen-Shannon distance with base 2
  (``scipy.spatial.distance.jensenshannon``), drift when >= 0.1. A p-value on
  thousands of rows flags differences too small to matter; a distance does not
  grow with the row count.

Evidently counts the *reference's* rows for the 1,000-row rule, because its
reference is a data frame of any size. Here the reference is a fixed-size sample
saved with the model, so the size that changes, and that makes a p-value
oversensitive, is the window's: the rule counts the window's non-null values.

A category the reference never saw drifts its feature, as in Evidently (whose
chi-squared expects 0 of it): its expected share is 0.0001, so even a few rows of it
weigh heavily. They are counted (``unseen``) for the input-quality report.

The population stability index is reported beside every test as a second opinion
(on the reference deciles, or the categories; empty bins get a share of 0.0001, as
Evidently's ``psi`` does), with the usual bands: < 0.1 no change, 0.1-0.25 moderate,
>= 0.25 significant. It never decides drift on its own.

The dataset verdict is Evidently's ``DatasetDriftMetric``: drift when the share of
drifted features is >= 0.5 (``drift_share``). A feature no test can judge (all
null in the window, or in the reference) is reported and left out of the share:
a column broken upstream is an input-quality finding, not drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import spatial, special, stats

from mlops.errors import UsageError
from mlops.monitoring.reference import bin_shares, category_keys

_EMPTY_SHARE = 1e-4  # Evidently's fill for an empty bin (PSI) and an unseen category
_MIN_STD = 0.001  # Evidently's floor on the standard deviation that norms Wasserstein
DISTANCE_VALUES = 100_000


@dataclass(frozen=True)
class Thresholds:
    """When a feature, the inputs as a whole and the prediction count as drifted.

    ``p_value``: a test's p-value below it is drift (small windows); ``distance``: a
    distance at or above it is drift (larger windows); ``share``: the share of drifted
    features at or above which the dataset drifted; ``small_rows``: the most rows a
    window may have to be tested rather than measured; ``psi_bands``: where PSI turns
    moderate, then significant. ``features`` overrides ``p_value`` or ``distance`` per
    feature (or output column): ``{"age": {"distance": 0.2}}``.
    """

    p_value: float = 0.05
    distance: float = 0.1
    share: float = 0.5
    small_rows: int = 1000
    psi_bands: tuple[float, float] = (0.1, 0.25)
    features: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, override in self.features.items():
            unknown = set(override) - {"p_value", "distance"}
            if unknown:
                raise UsageError(
                    f"drift threshold for {name!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                    "expected p_value or distance"
                )

    def of(self, name: str, key: str) -> float:
        return float(self.features.get(name, {}).get(key, getattr(self, key)))


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """The population stability index of two share vectors: sum (a - e) ln(a / e), which
    is the symmetrised Kullback-Leibler divergence, so scipy's ``rel_entr`` computes it."""
    e = np.where(reference > 0, reference, _EMPTY_SHARE)
    a = np.where(current > 0, current, _EMPTY_SHARE)
    return float(np.sum(special.rel_entr(a, e) + special.rel_entr(e, a)))


def psi_band(value: float, bands: tuple[float, float]) -> str:
    return "none" if value < bands[0] else "moderate" if value < bands[1] else "significant"


def column_drift(
    values: pd.Series, reference: Mapping[str, Any], name: str, thresholds: Thresholds
) -> dict[str, Any]:
    """One column of the window against its reference profile: the test, its score and
    threshold, the verdict (None: nothing to test), PSI and the null rates."""
    head: dict[str, Any] = {
        "rows": len(values),
        "null_rate": float(values.isna().mean()) if len(values) else 0.0,
        "reference_null_rate": float(reference["null_rate"]),
    }
    if "frequencies" in reference:
        return head | _categorical(values, reference, name, thresholds)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    sample = np.asarray(reference.get("sample", []), dtype=float)
    if numbers.size == 0 or sample.size == 0:
        return head | _untestable(numbers.size, "the window" if sample.size else "the reference")
    if numbers.size <= thresholds.small_rows:
        # The asymptotic p-value: with the reference's thousands of values it agrees with
        # the exact one (scipy's choice below 10,000 values) to ~1e-3 at a fifth the cost.
        test, score = "ks", float(stats.ks_2samp(sample, numbers, method="asymp").pvalue)
    else:
        norm = max(float(reference["std"]), _MIN_STD)
        # Every k-th value, at most DISTANCE_VALUES of them: the reference holds a few
        # thousand values, so the distance cannot be more precise than that anyway (a
        # 100,000-value subsample moves it by ~0.003 sd), and a million-row window
        # is compared in milliseconds instead of a third of a second per feature.
        step = -(-numbers.size // DISTANCE_VALUES)
        distance = stats.wasserstein_distance(sample, numbers[::step])
        test, score = "wasserstein", float(distance / norm)
    histogram = reference["histogram"]
    shares = bin_shares(numbers, np.asarray(histogram["edges"], dtype=float))
    index = psi(np.asarray(histogram["shares"]), shares)
    return head | _verdict(test, score, numbers.size, index, name=name, thresholds=thresholds)


def _categorical(
    values: pd.Series, reference: Mapping[str, Any], name: str, thresholds: Thresholds
) -> dict[str, Any]:
    keys = category_keys(values)
    known = list(reference["frequencies"])
    # The reference's categories, then one bucket for the rest: its "other" share
    # (categories past MAX_CATEGORIES) against the window's values it does not list.
    expected = np.array([*reference["frequencies"].values(), reference.get("other", 0.0)])
    counts = keys.value_counts()
    observed = np.append(counts.reindex(known, fill_value=0).to_numpy(), 0).astype(float)
    observed[-1] = len(keys) - observed[:-1].sum()
    if len(keys) == 0 or expected.sum() <= 0:
        return _untestable(len(keys), "the window" if expected.sum() else "the reference")
    expected = np.where(expected > 0, expected, _EMPTY_SHARE)
    expected = expected / expected.sum()
    current = observed / len(keys)
    if len(keys) <= thresholds.small_rows:
        test = "chi_squared"
        score = float(stats.chisquare(observed, expected * len(keys)).pvalue)
    else:
        test, score = "jensen_shannon", float(spatial.distance.jensenshannon(expected, current, 2))
    index = psi(expected, current)
    result = _verdict(test, score, len(keys), index, name=name, thresholds=thresholds)
    return result | {"unseen": int(observed[-1]) if reference.get("other", 0.0) == 0 else 0}


def _verdict(
    test: str, score: float, rows: int, index: float, *, name: str, thresholds: Thresholds
) -> dict[str, Any]:
    p_valued = test in ("ks", "chi_squared")
    threshold = thresholds.of(name, "p_value" if p_valued else "distance")
    drifted = score < threshold if p_valued else score >= threshold
    return {
        "test": test,
        "tested_rows": rows,
        "score": score,
        "threshold": threshold,
        "drifted": bool(drifted),
        "psi": index,
        "psi_band": psi_band(index, thresholds.psi_bands),
    }


def _untestable(rows: int, empty: str) -> dict[str, Any]:
    return {"test": None, "tested_rows": rows, "drifted": None, "why": f"no values in {empty}"}


def feature_drift(
    frame: pd.DataFrame, reference: Mapping[str, Any], thresholds: Thresholds
) -> dict[str, Any]:
    """Every reference feature of ``frame`` against its profile, and the dataset verdict."""
    profiles: Mapping[str, Any] = reference["features"]
    missing = [name for name in profiles if name not in frame.columns]
    if missing:
        raise UsageError(f"the window lacks feature(s) of the reference: {', '.join(missing)}")
    columns = {name: column_drift(frame[name], p, name, thresholds) for name, p in profiles.items()}
    tested = [name for name, c in columns.items() if c["drifted"] is not None]
    drifted = [name for name in tested if columns[name]["drifted"]]
    share = len(drifted) / len(tested) if tested else 0.0
    return {
        "features": columns,
        "tested": len(tested),
        "drifted_features": drifted,
        "share": share,
        "share_threshold": thresholds.share,
        "drifted": bool(tested) and share >= thresholds.share,
    }


def prediction_drift(
    outputs: pd.DataFrame, reference: Mapping[str, Any], thresholds: Thresholds
) -> dict[str, Any]:
    """The model's output columns against the reference's held-out answers. The verdict is
    the task's ``drift_column``'s (binary: the score; multiclass: the predicted class
    rates; regression: the value); the other columns are reported beside it."""
    profiles: Mapping[str, Any] = reference["prediction"]["columns"]
    verdict = str(reference["prediction"]["drift_column"])
    columns = {
        name: column_drift(outputs[name], p, name, thresholds)
        for name, p in profiles.items()
        if name in outputs.columns
    }
    if verdict not in columns:
        raise UsageError(f"the window lacks the output column {verdict!r} of the reference")
    return {"columns": columns, "drift_column": verdict, "drifted": columns[verdict]["drifted"]}
