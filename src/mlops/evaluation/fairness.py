"""Inclusion: does the model treat the groups of each protected attribute alike?

The protected attributes are params.yaml's validate.protected, the one list
that also keeps them out of the features. Per attribute, on the test split:

- classification (per class: binary the positive one, multiclass each, the
  worst class counting): the selection-rate ratio (lowest group's share of
  rows predicted the class over the highest's: the "four-fifths rule"), the
  same ratio of each group's selection rate over its actual rate of the class
  (what the model adds to the disparity the labels already hold), and the
  true-positive-rate gap (recall, highest minus lowest: equal opportunity);
- regression: the ratio of the group mean predictions (lowest over highest,
  when every mean is positive) and the gap in group mean absolute error,
  relative to the overall one (so a threshold fits any unit).

A group with fewer than ``min_rows`` rows (classification: or fewer than
``min_positives`` rows of the class) is too small to measure: it is named, and
the gate's policy (gate.unmeasurable_groups) decides, never skipped silently.

Proxies: a feature that predicts a protected attribute carries it into the
model although the attribute is not a feature. Normalised mutual information
(0: independent, 1: one determines the other) of each feature with each
attribute, on a seeded sample, numbers cut into quantile bins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from mlops.config import FairnessConfig
from mlops.errors import UsageError
from mlops.evaluation.slices import MISSING
from mlops.tasks.metrics import REPORTED, Prediction

_DIGITS = 6
# Numeric features are cut into this many quantile bins for mutual information.
PROXY_BINS = 10
# metrics.json's name for the number of protected groups too small to measure.
TOO_SMALL = "fairness_groups_too_small"
assert TOO_SMALL in REPORTED


def protected_groups(frame: pd.DataFrame, protected: Sequence[str]) -> dict[str, pd.Series]:
    """Each protected attribute's group per row (a missing value is its own group).

    A protected attribute absent from the data is the user's error: one line.
    """
    absent = [name for name in protected if name not in frame.columns]
    if absent:
        raise UsageError(
            f"params.yaml validate.protected: no column {absent[0]!r} in the test split "
            f"(expected one of: {', '.join(map(str, frame.columns))})"
        )
    return {
        name: frame[name].astype("str").where(frame[name].notna(), MISSING) for name in protected
    }


@dataclass(frozen=True)
class Summary:
    """One number of metrics.json (its direction is the metric registry's, REPORTED),
    the worst over attributes (and classes)."""

    name: str
    description: str

    @property
    def higher_is_better(self) -> bool:
        return bool(REPORTED[self.name].greater_is_better)


class Fairness:
    """One task's fairness numbers: per attribute, then the worst over attributes."""

    summaries: tuple[Summary, ...]

    def attribute(
        self, groups: pd.Series, y_true: np.ndarray, prediction: Prediction, config: FairnessConfig
    ) -> list[dict[str, Any]]:
        """One record per class judged (regression: one), each with its groups and numbers."""
        raise NotImplementedError


def _ratio(values: Sequence[float]) -> float | None:
    """Lowest over highest; None when it is undefined (fewer than two, or a zero top)."""
    if len(values) < 2 or max(values) <= 0 or min(values) < 0:
        return None
    return min(values) / max(values)


def _gap(values: Sequence[float]) -> float | None:
    return max(values) - min(values) if len(values) >= 2 else None


def _round(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), _DIGITS)


class ClassificationFairness(Fairness):
    """Selection-rate ratio, its ratio to the actual rates, and the TPR (recall) gap."""

    summaries = (
        Summary("selection_rate_ratio", "lowest group selection rate / highest"),
        Summary(
            "selection_rate_ratio_adjusted",
            "lowest group (selection rate / actual rate of the class) / highest",
        ),
        Summary("tpr_gap", "highest group true-positive rate (recall) - lowest"),
    )

    def __init__(self, judged: Callable[[Prediction], Sequence[Any]]) -> None:
        self._judged = judged  # the classes whose selection is judged

    def attribute(
        self, groups: pd.Series, y_true: np.ndarray, prediction: Prediction, config: FairnessConfig
    ) -> list[dict[str, Any]]:
        records = []
        for cls in self._judged(prediction):
            actual, chosen = np.asarray(y_true) == cls, np.asarray(prediction.label) == cls
            frame = pd.DataFrame({"group": groups.to_numpy(), "actual": actual, "chosen": chosen})
            frame["hit"] = frame["actual"] & frame["chosen"]
            table = frame.groupby("group", sort=True).agg(
                rows=("actual", "size"),
                positives=("actual", "sum"),
                selected=("chosen", "sum"),
                hits=("hit", "sum"),
            )
            rows = []
            for group, r in table.iterrows():
                row: dict[str, Any] = {
                    "group": str(group),
                    "rows": int(r["rows"]),
                    "positives": int(r["positives"]),
                    "selection_rate": _round(r["selected"] / r["rows"]),
                    "positive_rate": _round(r["positives"] / r["rows"]),
                    "tpr": _round(r["hits"] / r["positives"]) if r["positives"] else None,
                }
                rows.append(row | _status(row["rows"], row["positives"], config))
            measured = [r for r in rows if r["measured"]]
            adjusted = [r["selection_rate"] / r["positive_rate"] for r in measured]
            records.append(
                {
                    "class": cls,
                    "groups": rows,
                    "selection_rate_ratio": _round(_ratio([r["selection_rate"] for r in measured])),
                    "selection_rate_ratio_adjusted": _round(_ratio(adjusted)),
                    "tpr_gap": _round(_gap([r["tpr"] for r in measured])),
                }
            )
        return records


class RegressionFairness(Fairness):
    """The ratio of group mean predictions and the relative gap in group MAE."""

    summaries = (
        Summary("fairness_mean_ratio", "lowest group mean prediction / highest (all positive)"),
        Summary("fairness_error_gap", "(highest group MAE - lowest) / the test split's MAE"),
    )

    def attribute(
        self, groups: pd.Series, y_true: np.ndarray, prediction: Prediction, config: FairnessConfig
    ) -> list[dict[str, Any]]:
        value = np.asarray(prediction.value, dtype=float)
        error = np.abs(np.asarray(y_true, dtype=float) - value)
        frame = pd.DataFrame({"group": groups.to_numpy(), "value": value, "error": error})
        table = frame.groupby("group", sort=True).agg(
            rows=("value", "size"), mean_prediction=("value", "mean"), mae=("error", "mean")
        )
        rows: list[dict[str, Any]] = [
            {
                "group": str(group),
                "rows": int(r["rows"]),
                "mean_prediction": _round(r["mean_prediction"]),
                "mae": _round(r["mae"]),
            }
            | _status(int(r["rows"]), None, config)
            for group, r in table.iterrows()
        ]
        measured = [r for r in rows if r["measured"]]
        overall = float(error.mean()) if len(error) else 0.0
        gap = _gap([r["mae"] for r in measured])
        return [
            {
                "class": None,
                "groups": rows,
                "fairness_mean_ratio": _round(_ratio([r["mean_prediction"] for r in measured])),
                "fairness_error_gap": None
                if gap is None or overall == 0
                else _round(gap / overall),
            }
        ]


def _status(rows: int, positives: int | None, config: FairnessConfig) -> dict[str, Any]:
    if rows < config.min_rows:
        return {"measured": False, "reason": f"{rows} rows < min_rows {config.min_rows}"}
    if positives is not None and positives < config.min_positives:
        return {
            "measured": False,
            "reason": f"{positives} rows of the class < min_positives {config.min_positives}",
        }
    return {"measured": True, "reason": ""}


def fairness_report(
    groups: dict[str, pd.Series],
    y_true: np.ndarray,
    prediction: Prediction,
    *,
    measure: Fairness,
    config: FairnessConfig,
) -> dict[str, Any]:
    """evaluation.json's fairness section: per attribute and class, the groups and the
    numbers; the worst of each over attributes and classes; the groups too small."""
    attributes = [
        {"attribute": name} | record
        for name, series in groups.items()
        for record in measure.attribute(series, y_true, prediction, config)
    ]
    worst: dict[str, Any] = {}
    for summary in measure.summaries:
        found = [a for a in attributes if a[summary.name] is not None]
        pick = min if summary.higher_is_better else max
        best = pick(found, key=lambda a: a[summary.name]) if found else None
        worst[summary.name] = {
            "value": None if best is None else best[summary.name],
            "attribute": None if best is None else best["attribute"],
            "class": None if best is None else best["class"],
            "definition": summary.description,
        }
    # A group too small for one class of a multiclass task is named once per class.
    too_small = [
        {
            "group": f"{a['attribute']}={g['group']}",
            "class": a["class"],
            "rows": g["rows"],
            "reason": g["reason"],
        }
        for a in attributes
        for g in a["groups"]
        if not g["measured"]
    ]
    return {
        "protected": list(groups),
        "min_rows": config.min_rows,
        "min_positives": config.min_positives,
        "worst": worst,
        "too_small": too_small,
        "attributes": attributes,
    }


def proxies(
    frame: pd.DataFrame,
    features: Sequence[str],
    protected: Sequence[str],
    *,
    config: FairnessConfig,
    seed: int,
) -> dict[str, Any]:
    """Features that carry a protected attribute: normalised mutual information of each
    feature with each attribute on a seeded sample of ``frame``, those at or above
    evaluate.fairness.proxy_threshold listed as proxies."""
    sample = frame.sample(n=min(config.proxy_rows, len(frame)), random_state=seed)
    codes = {name: _codes(sample[name]) for name in [*protected, *features]}
    scores: list[dict[str, Any]] = [
        {
            "attribute": attribute,
            "feature": feature,
            "nmi": round(float(normalized_mutual_info_score(codes[attribute], codes[feature])), 4),
        }
        for attribute in protected
        for feature in features
    ]
    scores.sort(key=lambda s: (-s["nmi"], s["attribute"], s["feature"]))
    return {
        "measure": "normalised mutual information (arithmetic mean of the entropies)",
        "rows": len(sample),
        "threshold": config.proxy_threshold,
        "proxies": [s for s in scores if s["nmi"] >= config.proxy_threshold],
        "scores": scores,
    }


def _codes(column: pd.Series) -> np.ndarray:
    """Category codes (a missing value its own code); numbers cut into quantile bins."""
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > PROXY_BINS:
        column = pd.qcut(column, PROXY_BINS, duplicates="drop")
    return pd.factorize(column, use_na_sentinel=True)[0]
