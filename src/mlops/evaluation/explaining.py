"""Explain one prediction: trace an example through every step of the model pipeline.

The trace shows the raw values, each feature after every step of its
transformer (imputation, then encoding), the prediction, and the features that
moved it most. What is followed is the task's (``Task.explained``): binary, the
probability of the positive class; multiclass, the probability of the predicted
class; regression, the predicted value. "Moved" is measured by occlusion: the
change in that quantity when one feature is set to its typical training value
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

from mlops.tasks.metrics import Prediction
from mlops.tasks.task import Task

RAW = "raw"
PREDICTED_VALUE = "predicted value"


@dataclass(frozen=True)
class Explanation:
    """One example's way through the pipeline."""

    source: str
    row: int
    steps: dict[str, dict[str, Any]]
    # What ``value`` and every contribution's change measure, e.g. "probability of
    # the positive class (1)" or "predicted value"; ``explained_class`` is that class
    # (None: the predicted value is followed).
    quantity: str
    explained_class: Any
    value: float
    predicted: Any  # a class label, or the predicted value
    threshold: float | None  # the decision threshold ``predicted`` came from, if any
    actual: Any
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
    columns = features
    for name, step in preprocessing_steps(model):
        data = step.transform(data)
        steps[name] = _one_row(data, step, columns)
        # An array step's output names are the next step's input names.
        columns = list(steps[name])
    return steps


def preprocessing_steps(model: Pipeline) -> list[tuple[str, Any]]:
    """The steps before the estimator, seen through pipelines that wrap a single step."""
    steps = list(model.steps[:-1])
    while len(steps) == 1 and isinstance(steps[0][1], Pipeline):
        steps = list(steps[0][1].steps)
    return [(name, step) for name, step in steps if step not in (None, "passthrough")]


def _one_row(output: Any, step: Any, columns: list[str]) -> dict[str, Any]:
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


def _followed(
    task: Task, model: Pipeline, features: pd.DataFrame, column: int | None
) -> np.ndarray:
    """Per row, the quantity explain follows (see ``_pick``)."""
    return _pick(task.predict(model, features), column)


def _pick(prediction: Prediction, column: int | None) -> np.ndarray:
    """The probabilities in ``proba`` column ``column``, or the predicted values when None."""
    if column is None:
        return np.asarray(prediction.value, dtype=float)
    assert prediction.proba is not None
    return np.asarray(prediction.proba[:, column], dtype=float)


def contributions(
    model: Pipeline,
    row: pd.DataFrame,
    reference: Mapping[str, Any],
    task: Task,
    column: int | None,
) -> list[dict[str, Any]]:
    """Per feature: the followed quantity's change when that feature alone is set to
    its reference value."""
    features = list(model.feature_names_in_)
    base = row[features].iloc[[0] * len(features)].reset_index(drop=True)
    for position, name in enumerate(features):
        base.loc[position, name] = reference[name]
    value = float(_followed(task, model, row[features], column)[0])
    occluded = _followed(task, model, base, column)
    records = [
        {
            "feature": name,
            "value": plain(row[name].iloc[0]),
            "reference": reference[name],
            "change": round(value - float(v), 6),
        }
        for name, v in zip(features, occluded, strict=True)
    ]
    return sorted(records, key=lambda r: (-abs(r["change"]), r["feature"]))


def explain(
    model: Pipeline,
    frame: pd.DataFrame,
    *,
    task: Task,
    row: int,
    reference: Mapping[str, Any],
    threshold: float,
    target: str,
    source: str,
) -> Explanation:
    """Trace row ``row`` of ``frame`` (a 0-based position) through ``model``."""
    example = frame.iloc[[row]]
    features = example[list(model.feature_names_in_)]
    prediction = task.predict(model, features, threshold)
    explained = task.explained(prediction)
    column = None if explained is None else explained[0]
    of_class = None if explained is None else plain(prediction.classes[explained[0]])
    quantity = (
        PREDICTED_VALUE if explained is None else f"probability of {explained[1]} ({of_class})"
    )
    actual = plain(example[target].iloc[0]) if target in example.columns else None
    return Explanation(
        source=source,
        row=row,
        steps=trace(model, example),
        quantity=quantity,
        explained_class=of_class,
        value=round(float(_pick(prediction, column)[0]), 6),
        predicted=plain(prediction.label[0]),
        threshold=threshold if task.thresholded else None,
        actual=actual,
        contributions=contributions(model, example, reference, task, column),
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
    quantity = explanation.quantity
    lines += [
        "",
        f"{quantity[0].upper()}{quantity[1:]}: {explanation.value:.4f}{_decision(explanation)}",
        "",
        f"Features that moved it most, as the change in the {quantity} when set to the "
        "typical training value:",
    ]
    for record in explanation.contributions[:top]:
        lines.append(
            f"  {record['feature']:<{widths[0]}}  {_show(record['value']):<20} "
            f"(typical {_show(record['reference'])}): {record['change']:+.4f}"
        )
    return "\n".join(lines) + "\n"


def _decision(explanation: Explanation) -> str:
    """What a class probability led to: the predicted class (at the threshold, if any)."""
    if explanation.explained_class is None:
        return ""  # the quantity is the prediction itself
    at = "" if explanation.threshold is None else f" at threshold {explanation.threshold}"
    return f" -> predicted {_show(explanation.predicted)}{at}"


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
