"""Explain one prediction: trace an example through every step of the model pipeline.

The trace shows the raw values, each feature after every step of its
transformer (imputation, then encoding), the probability, and the features
that moved it most. "Moved" is measured by occlusion: the change in the
probability when that one feature is set to its typical training value
(median or most frequent) with everything else kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

RAW = "raw"


@dataclass(frozen=True)
class Explanation:
    """One example's way through the pipeline."""

    source: str
    row: int
    steps: dict[str, dict[str, Any]]
    probability: float
    threshold: float
    predicted: int
    actual: int | None
    contributions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_values(train: pd.DataFrame, features: Sequence[str]) -> dict[str, Any]:
    """Each feature's typical training value: median for numbers, most frequent for text."""
    values: dict[str, Any] = {}
    for name in features:
        column = train[name].dropna()
        if pd.api.types.is_numeric_dtype(column):
            values[name] = float(column.median())
        else:
            counts = column.value_counts()
            values[name] = str(sorted(counts[counts == counts.max()].index)[0])
    return values


def trace(model: Pipeline, row: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The example after every transforming step: feature -> value (or encoded columns)."""
    features = list(model.feature_names_in_)
    steps: dict[str, dict[str, Any]] = {RAW: {f: plain(row[f].iloc[0]) for f in features}}
    data: Any = row[features]
    for name, step in _flat_steps(model.steps[:-1]):
        if isinstance(step, ColumnTransformer):
            steps |= _column_steps(step, data)
        else:
            steps[name] = _as_values(step.transform(data), step, list(data.columns))
        data = step.transform(data)
    return steps


def _flat_steps(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """preprocess = impute -> encode, as two named steps.

    One level only: the imputer is itself a pipeline (sentinels, simple, knn,
    order), whose inner stages would tell a reader less than its filled values.
    """
    flat: list[tuple[str, Any]] = []
    for name, step in steps:
        flat.extend(step.steps if isinstance(step, Pipeline) else [(name, step)])
    return flat


def _column_steps(transformer: ColumnTransformer, data: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Inside a ColumnTransformer: each feature through its own sub-pipeline, step by step."""
    steps: dict[str, dict[str, Any]] = {}
    for name, sub, columns in transformer.transformers_:
        if isinstance(sub, str):  # "drop" or "passthrough"
            continue
        key = "+".join(map(str, columns))
        stages = sub.steps if isinstance(sub, Pipeline) else [(name, sub)]
        values: Any = data[list(columns)]
        for step_name, step in stages:
            if step not in (None, "passthrough"):  # a passthrough step leaves values as they are
                values = step.transform(values)
            steps.setdefault(step_name, {})[key] = _as_values(values, step, list(columns))
    return steps


def _as_values(output: Any, step: Any, columns: list[str]) -> Any:
    """One row of a step's output: a scalar for one column, else {column: value}."""
    if isinstance(output, pd.DataFrame):
        names, row = list(output.columns), output.iloc[0].tolist()
    elif isinstance(step, str) or step is None:
        names, row = columns, np.asarray(output).reshape(1, -1)[0].tolist()
    else:
        array = np.asarray(output)
        names = [str(n) for n in step.get_feature_names_out(columns)]
        row = array.reshape(1, -1)[0].tolist()
    if len(names) == 1:
        return plain(row[0])
    return {str(n): plain(v) for n, v in zip(names, row, strict=True)}


def plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers to Python, missing to None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return plain(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def contributions(
    model: Pipeline, row: pd.DataFrame, reference: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Per feature: the probability's change when it alone is set to its reference value."""
    features = list(model.feature_names_in_)
    base = row[features].iloc[[0] * len(features)].reset_index(drop=True)
    for position, name in enumerate(features):
        base.loc[position, name] = reference[name]
    probability = float(model.predict_proba(row[features])[0, 1])
    occluded = model.predict_proba(base)[:, 1]
    records = [
        {
            "feature": name,
            "value": plain(row[name].iloc[0]),
            "reference": reference[name],
            "change": round(probability - float(p), 6),
        }
        for name, p in zip(features, occluded, strict=True)
    ]
    return sorted(records, key=lambda r: (-abs(r["change"]), r["feature"]))


def explain(
    model: Pipeline,
    frame: pd.DataFrame,
    *,
    row: int,
    reference: Mapping[str, Any],
    threshold: float,
    target: str,
    source: str,
) -> Explanation:
    """Trace row ``row`` of ``frame`` (a 0-based position) through ``model``."""
    example = frame.iloc[[row]]
    probability = float(model.predict_proba(example[list(model.feature_names_in_)])[0, 1])
    actual = plain(example[target].iloc[0]) if target in example.columns else None
    return Explanation(
        source=source,
        row=row,
        steps=trace(model, example),
        probability=round(probability, 6),
        threshold=threshold,
        predicted=int(probability >= threshold),
        actual=None if actual is None else int(actual),
        contributions=contributions(model, example, reference),
    )


def render(explanation: Explanation, top: int) -> str:
    """The explanation as a table a person reads in a terminal."""
    steps = explanation.steps
    names = list(steps)
    features = list(steps[RAW])
    widths = [max(len(f) for f in features), *([18] * len(names))]
    header = ["feature", *(n if n == RAW else f"after {n}" for n in names)]
    lines = [
        f"{explanation.source}, row {explanation.row} (actual: {explanation.actual})",
        "",
        _line(header, widths),
    ]
    for feature in features:
        cells = [_show(steps[n].get(feature, "")) for n in names]
        lines.append(_line([feature, *cells], widths))
    lines += [
        "",
        f"Probability of the positive class: {explanation.probability:.4f} -> predicted "
        f"{explanation.predicted} at threshold {explanation.threshold}",
        "",
        "Features that moved it most (change in probability versus the typical training value):",
    ]
    for record in explanation.contributions[:top]:
        lines.append(
            f"  {record['feature']:<{widths[0]}}  {_show(record['value']):<18} "
            f"(typical {_show(record['reference'])}): {record['change']:+.4f}"
        )
    return "\n".join(lines) + "\n"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()


def _show(value: Any) -> str:
    if isinstance(value, dict):
        # One-hot columns: only the active ones say anything.
        active = {k: v for k, v in value.items() if v}
        return ", ".join(f"{k}={_show(v)}" for k, v in active.items()) or "(none active)"
    if isinstance(value, float):
        return f"{value:g}"
    return "missing" if value is None else str(value)
