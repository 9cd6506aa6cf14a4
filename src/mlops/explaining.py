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
    """The example after every preprocessing step: {step: {column: value}}.

    Nested single-step pipelines are opened, so a model built as
    preprocess = [impute, encode] reports "impute" and "encode".
    """
    features = list(model.feature_names_in_)
    steps: dict[str, dict[str, Any]] = {RAW: {f: plain(row[f].iloc[0]) for f in features}}
    data: Any = row[features]
    for name, step in preprocessing_steps(model):
        columns = list(data.columns) if isinstance(data, pd.DataFrame) else None
        data = step.transform(data)
        steps[name] = _one_row(data, step, columns)
    return steps


def preprocessing_steps(model: Pipeline) -> list[tuple[str, Any]]:
    """The steps before the estimator, seen through pipelines that wrap a single step."""
    steps = list(model.steps[:-1])
    while len(steps) == 1 and isinstance(steps[0][1], Pipeline):
        steps = list(steps[0][1].steps)
    return [(name, step) for name, step in steps if step not in (None, "passthrough")]


def _one_row(output: Any, step: Any, columns: list[str] | None) -> dict[str, Any]:
    if isinstance(output, pd.DataFrame):
        names, values = list(output.columns), output.iloc[0].tolist()
    else:
        names = [str(n) for n in step.get_feature_names_out(columns)]
        values = np.asarray(output).reshape(1, -1)[0].tolist()
    return {str(n): plain(v) for n, v in zip(names, values, strict=True)}


def columns_of(feature: str, columns: Sequence[str], features: Sequence[str]) -> list[str]:
    """The columns of a step's output that stem from ``feature``.

    Its own name, a one-hot ``feature_category`` (unless a longer feature name
    claims it: education_num is not a category of education), or its
    missing-value indicator.
    """
    owned = []
    for column in columns:
        prefixes = [f for f in features if column == f or column.startswith(f"{f}_")]
        if (
            column == f"missingindicator_{feature}"
            or max(prefixes, key=len, default=None) == feature
        ):
            owned.append(column)
    return owned


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
    features = list(steps[RAW])
    names = list(steps)
    widths = [max(len(f) for f in features), *([20] * len(names))]
    header = ["feature", *(n if n == RAW else f"after {n}" for n in names)]
    lines = [
        f"{explanation.source}, row {explanation.row} (actual: {explanation.actual})",
        "",
        _line(header, widths),
    ]
    for feature in features:
        cells = [_cell(steps[n], feature, features) for n in names]
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
            f"  {record['feature']:<{widths[0]}}  {_show(record['value']):<20} "
            f"(typical {_show(record['reference'])}): {record['change']:+.4f}"
        )
    return "\n".join(lines) + "\n"


def _cell(values: Mapping[str, Any], feature: str, features: Sequence[str]) -> str:
    parts = [_show(values[feature])] if feature in values else []
    for column in columns_of(feature, list(values), features):
        if column == feature or not values[column]:
            continue  # one-hot: only the active columns say anything
        indicator = column == f"missingindicator_{feature}"
        parts.append("(was missing)" if indicator else f"{column}={_show(values[column])}")
    return ", ".join(parts) or "-"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "missing" if value is None else str(value)
