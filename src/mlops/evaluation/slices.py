"""Slices: the target metric per group of a protected or important attribute.

A model can be good on average and poor for one group; the gate bounds the
worst slice and the gap between slices. The metric is the registry's
(tasks.metrics), so slices work for every task. A slice too small to measure,
or where the metric is undefined (a single class for a ranking metric, a zero
actual value for a percentage error), is reported, not scored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import SlicesConfig
from mlops.errors import UsageError
from mlops.tasks.metrics import Metric, Prediction

MISSING = "(missing)"
# Per slice, numbers that describe it beside the metric (a task's own, e.g. rates).
Describe = Callable[[np.ndarray, Prediction], dict[str, float | None]]


def label_slices(frame: pd.DataFrame, config: SlicesConfig) -> dict[str, pd.Series]:
    """Each attribute's slice label per row (bands for numeric attributes)."""
    for key, names in (("columns", config.columns), ("bands", tuple(config.bands))):
        absent = [name for name in names if name not in frame.columns]
        if absent:
            raise UsageError(
                f"params.yaml evaluate.slices.{key}: no column {absent[0]!r} in the test split "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
    labels = {name: _categories(frame[name]) for name in config.columns}
    return labels | {name: _bands(frame[name], edges) for name, edges in config.bands.items()}


def _categories(column: pd.Series) -> pd.Series:
    text = column.astype("str").where(column.notna(), MISSING)
    return pd.Series(pd.Categorical(text, categories=sorted(text.unique())), index=column.index)


def _bands(column: pd.Series, edges: Sequence[float]) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(column):
        raise UsageError(
            f"params.yaml evaluate.slices.bands.{column.name}: column {column.name!r} is not "
            f"numeric ({column.dtype}); list it under evaluate.slices.columns instead"
        )
    bounds = [-math.inf, *edges, math.inf]
    names = [f"< {edges[0]:g}"]
    names += [f"[{low:g}, {high:g})" for low, high in itertools.pairwise(edges)]
    names += [f">= {edges[-1]:g}"]
    bands = pd.cut(column, bounds, right=False, labels=names)
    if bands.isna().any():
        bands = bands.cat.add_categories([MISSING]).fillna(MISSING)
    return bands


def measure_slices(
    labels: dict[str, pd.Series],
    y_true: np.ndarray,
    prediction: Prediction,
    *,
    metric: Metric,
    min_rows: int,
    describe: Describe,
) -> list[dict[str, Any]]:
    """One record per slice: its size, what ``describe`` says of it and the metric
    (None when not measurable)."""
    records = []
    for attribute, series in labels.items():
        for name in series.cat.categories:
            mask = (series == name).to_numpy()
            y_slice, p_slice = y_true[mask], prediction.take(mask)
            record = {"attribute": attribute, "slice": str(name), "rows": int(mask.sum())}
            record |= {key: _round(v) for key, v in describe(y_slice, p_slice).items()}
            records.append(record | _value(y_slice, p_slice, min_rows, metric))
    return records


def _value(
    y_true: np.ndarray, prediction: Prediction, min_rows: int, metric: Metric
) -> dict[str, Any]:
    if len(y_true) < min_rows:
        return {"value": None, "status": f"too small: {len(y_true)} rows < min_rows {min_rows}"}
    value = metric(y_true, prediction)
    if math.isnan(value):
        return {"value": None, "status": f"not measurable: {metric.why_undefined(y_true)}"}
    return {"value": round(value, 6), "status": "measured"}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def summarise_slices(records: Sequence[dict[str, Any]], higher_is_better: bool) -> dict[str, Any]:
    """The worst measured slice and the largest gap between slices of one attribute, and
    each slice that could not be measured, with its rows and why (the gate names them
    when a slice threshold has nothing to judge)."""
    measured = [r for r in records if r["value"] is not None]
    summary: dict[str, Any] = {
        "worst": None,
        "worst_slice": None,
        "gap": None,
        "gap_attribute": None,
        "measured": len(measured),
        "too_small": sum(r["status"].startswith("too small") for r in records),
        "unmeasured": [
            {"slice": _name(r), "rows": r["rows"], "reason": r["status"]}
            for r in records
            if r["value"] is None
        ],
    }
    if measured:
        pick = min if higher_is_better else max
        worst = pick(measured, key=lambda r: r["value"])
        summary |= {"worst": worst["value"], "worst_slice": _name(worst)}
    gaps = _gaps(measured)
    if gaps:
        attribute = max(gaps, key=lambda a: (gaps[a], a))
        summary |= {"gap": gaps[attribute], "gap_attribute": attribute}
    return summary


def _gaps(measured: Sequence[dict[str, Any]]) -> dict[str, float]:
    by_attribute: dict[str, list[float]] = {}
    for record in measured:
        by_attribute.setdefault(record["attribute"], []).append(record["value"])
    return {a: round(max(v) - min(v), 6) for a, v in by_attribute.items() if len(v) > 1}


def _name(record: dict[str, Any]) -> str:
    return f"{record['attribute']}={record['slice']}"


def describe_unmeasured(summary: Mapping[str, Any], *, limit: int = 5) -> str:
    """The slices ``summarise_slices`` could not measure, and why, in one clause
    (the first ``limit``; evaluation.json lists them all)."""
    unmeasured = summary["unmeasured"]
    shown = [f"{u['slice']} ({u['reason']})" for u in unmeasured[:limit]]
    more = len(unmeasured) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
