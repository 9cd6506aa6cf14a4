"""The business metric: what the predictions are worth, and whether the ML metric tracks it.

params.yaml (evaluate.business) gives what one prediction is worth, per task:

- binary: the value of each of the four outcomes; the expected value per
  prediction at a threshold follows from the confusion counts there, so the
  best threshold can be searched;
- multiclass: the value of a right and of a wrong class;
- regression: the cost of each unit predicted above and below the actual value.

Each is a ``BusinessValue``; evaluation picks the task's one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlops.config import (
    BusinessConfig,
    CategoricalParam,
    FloatParam,
    IntParam,
    ModelFamily,
    TuneConfig,
)
from mlops.tasks.metrics import Prediction

# Where tuning trial tables keep the score and the model family (Optuna's
# trials_dataframe() names first, then plain names).
SCORE_COLUMNS = ("score", "value")
FAMILY_COLUMNS = ("params_family", "family")
OUTCOMES = ("true_positive", "false_positive", "true_negative", "false_negative")
_PLOT_THRESHOLDS = np.linspace(0.0, 1.0, 101)
_DIGITS = 6


class BusinessValue(ABC):
    """What one task's predictions are worth, per prediction, in the user's unit."""

    # The params.yaml keys (evaluate.business) this task reads.
    keys: tuple[str, ...]

    @abstractmethod
    def value(self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig) -> float:
        """The headline value per prediction: what ``business_value`` in metrics.json holds."""

    def report(
        self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig, threshold: float
    ) -> dict[str, Any]:
        """evaluation.json's business section: the values used and what they give."""
        used = values.model_dump(include=set(self.keys))
        return {"values": used, "value": _round(self.value(y_true, prediction, values))}

    def tables(
        self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig
    ) -> dict[str, pd.DataFrame]:
        """Plot tables, named like their files in reports/plots."""
        return {}


class OutcomeValue(BusinessValue):
    """Binary: a value per outcome; the best threshold is searched, as a decision would be."""

    keys = OUTCOMES

    def value(self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig) -> float:
        return optimal_value(y_true, prediction.positive, values)[1]

    def report(
        self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig, threshold: float
    ) -> dict[str, Any]:
        """Expected value per prediction at the best threshold and at the configured one."""
        proba = prediction.positive
        best, value = optimal_value(y_true, proba, values)
        return {
            "values": values.model_dump(include=set(self.keys)),
            "best_threshold": _round(best),
            "value": _round(value),
            "value_at_threshold": _round(value_at(y_true, proba, threshold, values)),
        }

    def tables(
        self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig
    ) -> dict[str, pd.DataFrame]:
        return {"business": value_curve(y_true, prediction.positive, values)}


class ClassValue(BusinessValue):
    """Multiclass: a right class is worth ``correct``, a wrong one ``incorrect``."""

    keys = ("correct", "incorrect")

    def value(self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig) -> float:
        right = np.asarray(y_true) == prediction.label
        return float(np.mean(np.where(right, values.correct, values.incorrect)))


class CostValue(BusinessValue):
    """Regression: each unit predicted above the actual value costs ``over_prediction_cost``,
    each unit below it ``under_prediction_cost``; the value is minus the mean cost."""

    keys = ("over_prediction_cost", "under_prediction_cost")

    def value(self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig) -> float:
        over, under = _misses(y_true, prediction)
        return -(values.over_prediction_cost * over + values.under_prediction_cost * under)

    def report(
        self, y_true: np.ndarray, prediction: Prediction, values: BusinessConfig, threshold: float
    ) -> dict[str, Any]:
        over, under = _misses(y_true, prediction)
        return super().report(y_true, prediction, values, threshold) | {
            "mean_over_prediction": _round(over),
            "mean_under_prediction": _round(under),
        }


def _misses(y_true: np.ndarray, prediction: Prediction) -> tuple[float, float]:
    """Mean amount predicted above and below the actual value, over all predictions."""
    error = prediction.value - np.asarray(y_true, dtype=float)
    return float(np.mean(np.clip(error, 0.0, None))), float(np.mean(np.clip(-error, 0.0, None)))


def _round(value: float) -> float:
    return round(float(value), _DIGITS)


def value_at(
    y_true: np.ndarray, proba: np.ndarray, threshold: float, values: BusinessConfig
) -> float:
    """Binary: expected value per prediction when ``proba >= threshold`` is predicted positive."""
    return float(_values(y_true, proba, np.array([threshold]), values)[0])


def _values(
    y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray, values: BusinessConfig
) -> np.ndarray:
    positives, negatives = np.sort(proba[y_true == 1]), np.sort(proba[y_true == 0])
    # Rows at or above each threshold, counted by binary search on the sorted scores.
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    fn, tn = len(positives) - tp, len(negatives) - fp
    total = (
        tp * values.true_positive
        + fp * values.false_positive
        + tn * values.true_negative
        + fn * values.false_negative
    )
    return np.asarray(total / len(y_true), dtype=float)


def optimal_value(
    y_true: np.ndarray, proba: np.ndarray, values: BusinessConfig
) -> tuple[float, float]:
    """Binary: the threshold in [0, 1] with the highest expected value per prediction, and
    that value.

    Candidates are every distinct score and 1.0 (acting on nobody, unless a
    score is exactly 1.0); among equal values the highest threshold wins
    (fewest actions). Predicted positive means ``proba >= threshold``.
    """
    candidates = np.unique(np.append(proba, 1.0))[::-1]
    expected = _values(y_true, proba, candidates, values)
    best = int(np.argmax(expected))
    return float(candidates[best]), float(expected[best])


def value_curve(y_true: np.ndarray, proba: np.ndarray, values: BusinessConfig) -> pd.DataFrame:
    """Binary: expected value per prediction on a grid of thresholds, for the plot."""
    expected = _values(y_true, proba, _PLOT_THRESHOLDS, values)
    return pd.DataFrame({"threshold": _PLOT_THRESHOLDS, "value": expected})


@dataclass(frozen=True)
class TrialConfig:
    """One finished tuning trial: its model family, full hyperparameters and CV score."""

    number: int
    family: str
    params: dict[str, Any]
    score: float


def parse_trials(trials: pd.DataFrame, tune: TuneConfig) -> list[TrialConfig] | str:
    """The finished trials of a tuning table, or why none can be read from it."""
    score_column = next((c for c in SCORE_COLUMNS if c in trials.columns), None)
    if score_column is None:
        return f"the trials table has no score column (expected one of {list(SCORE_COLUMNS)})"
    finished = trials[trials[score_column].notna()]
    if "state" in trials.columns:
        finished = finished[finished["state"].astype("str").str.upper().str.contains("COMPLETE")]
    configs = []
    for position, record in enumerate(finished.to_dict(orient="records")):
        row = {str(key): value for key, value in record.items()}
        config = _trial_config(row, int(row.get("number", position)), row[score_column], tune)
        if config is not None:
            configs.append(config)
    return configs


def _trial_config(
    row: Mapping[str, Any], number: int, score: float, tune: TuneConfig
) -> TrialConfig | None:
    family = _family(row, tune)
    if family is None:
        return None
    tuned = {}
    for name, spec in tune.space.get(family, {}).items():
        found, value = _cast(_lookup(row, family, name), spec)
        if not found:
            return None  # the trial does not carry this hyperparameter: not reproducible
        tuned[name] = value
    params = {**tune.fixed.get(family, {}), **tuned}
    return TrialConfig(number, family, params, float(score))


def _family(row: Mapping[str, Any], tune: TuneConfig) -> ModelFamily | None:
    # Any family params.yaml can still build, not only those searched today.
    known = [*tune.space, *tune.fixed]
    for column in FAMILY_COLUMNS:
        if column in row:
            return next((f for f in known if f == str(row[column])), None)
    return tune.families[0] if len(tune.families) == 1 else None


def _lookup(row: Mapping[str, Any], family: str, name: str) -> Any:
    for key in (f"params_{family}.{name}", f"{family}.{name}", f"params_{name}", name):
        if key in row and not pd.isna(row[key]):
            return row[key]
    return None


def _cast(value: Any, spec: IntParam | FloatParam | CategoricalParam) -> tuple[bool, Any]:
    """A CSV cell back to the type the search space declares (ints come back as 12.0).

    (False, None) when the cell holds no usable value; an empty cell is the
    choice None of a categorical that offers it (a CSV cannot say null otherwise).
    """
    if isinstance(spec, CategoricalParam):
        if value is None:
            return (None in spec.choices), None
        matches = [c for c in spec.choices if c is not None and str(c) == str(value)]
        return (True, matches[0]) if matches else (False, None)
    if value is None:
        return False, None
    return True, round(float(value)) if isinstance(spec, IntParam) else float(value)


def pick_trials(configs: Sequence[TrialConfig], count: int) -> list[TrialConfig]:
    """``count`` trials spread evenly over the range of scores, worst to best."""
    ranked = sorted(configs, key=lambda c: (c.score, c.number))
    if len(ranked) <= count:
        return ranked
    positions = np.unique(np.linspace(0, len(ranked) - 1, count).round().astype(int))
    return [ranked[i] for i in positions]


def spearman(left: Sequence[float], right: Sequence[float]) -> float | None:
    """Rank correlation, or None when it is undefined (fewer than 3 points, a constant)."""
    if len(left) < 3 or len(set(left)) < 2 or len(set(right)) < 2:
        return None
    return float(stats.spearmanr(left, right).statistic)
