"""Target leakage: a feature that alone all but gives the target away.

A column recorded after the outcome (the cause of death beside "died", a refund date
beside "churned", an account closed beside "defaulted") makes the model look perfect on
every split, the test split included, and useless in production, where that column is
not known yet when the prediction is made. No later check catches it: the gate sees a
model far above its baselines. So each feature is scored on its own, out of fold over
the rows validate.importance samples from the training split (``FOLDS`` folds, every
row forecast by a fit on the others), by its skill: 1 - its squared error / the
prior's, the Brier skill score for classes (the forecast probabilities against the
one-hot labels, the prior the classes' shares in the fitted rows) and R^2 for numbers
(the prior their mean). 1 is a perfect forecast, 0 no better than the prior. Scored on
one held-out part, a definition's one borderline row moved it across the bound:
births14's birth weight, which defines "low birth weight", scored 0.943 on 240 rows
held out and 0.960 out of fold on 800.

The one-feature forecasts: a category's is its rows' class shares (or mean), shrunk
towards the prior as few rows back it (scikit-learn's TargetEncoder; missing values
are a category of their own, so a column filled in only for one class is caught); a
number's is a decision tree's leaf (at most ``LEAVES`` leaves, missing values sent to
whichever side fits better), which finds a threshold or a step however sharp.

A strong feature is not a leak: a diamond's carat alone forecasts its price with a
skill of 0.86, a company's profits its market value with 0.74. The default bound,
0.95, is for a feature that all but determines the target (the hours a woman worked,
beside whether she worked: 0.98); validate.leakage.allow keeps one reviewed as known
when predicting. A leak spread over several columns is caught by chance only: a
Californian district's test score is the mean of its reading and maths scores, which
forecast it alone with 0.950 (at the bound) and 0.940 (under it). That needs a person
who knows when each column is recorded, and data.drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlops.config import LeakageConfig
from mlops.errors import UsageError

if TYPE_CHECKING:
    from mlops.tasks.task import Task

LEAVES = 32  # a number's tree: enough steps for a monotone function to score ~0.999
MIN_LEAF = 5  # rows per leaf at least: a leaf of one row memorises, it does not forecast
FOLDS = 3  # each fits on two thirds of the rows, as a 0.3 hold-out did, and scores a third


@dataclass(frozen=True)
class Leakage:
    """Each feature's skill alone on the held-out rows, and what the policy does."""

    skills: dict[str, float]
    suspected: tuple[str, ...]  # at least max_skill and not allowed, most skilful first
    config: LeakageConfig
    rows: dict[str, int]  # {"rows": n, "folds": k}
    prior: str = "each label's share"  # the forecast a skill of 0 matches ("the mean")

    @property
    def failed(self) -> bool:
        return self.config.policy == "fail" and bool(self.suspected)

    @property
    def dropped(self) -> list[str]:
        return list(self.suspected) if self.config.policy == "drop" else []

    @property
    def excluded(self) -> tuple[str, ...]:
        """Left out of feature value: beside a leak every other feature looks worthless."""
        return self.suspected if self.config.policy in ("drop", "fail") else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "max_skill": self.config.max_skill,
            "policy": self.config.policy,
            "allow": list(self.config.allow),
            "rows": self.rows["rows"],
            "folds": self.rows["folds"],
            "skills": dict(self.skills),
            "suspected": list(self.suspected),
        }


def measure(
    sample: pd.DataFrame,
    features: Sequence[str],
    target: str,
    config: LeakageConfig,
    *,
    task: Task,
    seed: int,
    groups: str | None = None,
) -> Leakage:
    """Each of ``features`` forecast alone out of fold over ``sample``: every row by a
    fit on the other folds (``FOLDS``, whole ``groups`` in one), so that every row is
    scored (one mislabelled row among a few hundred held out moved a near-perfect
    forecast across the bound)."""
    folds = _folds(sample, target, task, seed, groups)
    y = sample[target]
    skills = {
        name: round(
            skill(sample[name], y, folds, classification=task.is_classification, seed=seed),
            4,
        )
        for name in features
    }
    suspected = sorted(
        (name for name, value in skills.items()
         if value >= config.max_skill and name not in config.allow),
        key=lambda name: (-skills[name], name),
    )  # fmt: skip
    rows = {"rows": len(sample), "folds": len(folds)}
    prior = "each label's share" if task.is_classification else "the mean"
    return Leakage(skills, tuple(suspected), config, rows, prior)


def _folds(
    sample: pd.DataFrame, target: str, task: Task, seed: int, groups: str | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``FOLDS`` folds of ``sample`` (stratified, grouped), or two when a class has too
    few rows for more (the sample keeps two of each)."""
    blocks = None if groups is None else sample[groups]
    try:
        folds = task.folds(sample[target], FOLDS, seed, "validate.leakage", groups=blocks)
    except UsageError:
        folds = task.folds(sample[target], 2, seed, "validate.leakage", groups=blocks)
    return [(np.asarray(fit), np.asarray(held)) for fit, held in folds]


def skill(
    x: pd.Series,
    y: pd.Series,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    classification: bool,
    seed: int,
) -> float:
    """The skill of forecasts of ``y`` from ``x`` alone, each fold's held-out rows (by
    position) forecast by a fit on its fitted rows: 1 - their squared error / the
    prior's, summed over the folds (at most 1; below 0 when worse than the prior)."""
    error = baseline = 0.0
    for fit, held in folds:
        fold_error, fold_baseline = _errors(
            x.iloc[fit], y.iloc[fit], x.iloc[held], y.iloc[held],
            classification=classification, seed=seed,
        )  # fmt: skip
        error, baseline = error + fold_error, baseline + fold_baseline
    if baseline <= 0.0:  # held-out targets the prior gets exactly: nothing to forecast
        return 0.0
    return 1.0 - error / baseline


def _errors(
    x_fit: pd.Series,
    y_fit: pd.Series,
    x_held: pd.Series,
    y_held: pd.Series,
    *,
    classification: bool,
    seed: int,
) -> tuple[float, float]:
    """The squared errors summed over the held-out rows: the forecast's, the prior's."""
    if classification:
        labels = y_fit.astype(str)
        classes = np.array(sorted(pd.unique(labels)))
        truth = (y_held.astype(str).to_numpy()[:, None] == classes[None, :]).astype(float)
        forecast = _class_forecast(x_fit, labels, x_held, classes, seed)
        prior = (labels.to_numpy()[:, None] == classes[None, :]).mean(axis=0)
        error = float(((forecast - truth) ** 2).sum())
        baseline = float(((prior[None, :] - truth) ** 2).sum())
    else:
        truth = y_held.to_numpy(dtype=float)
        forecast = _value_forecast(x_fit, y_fit.to_numpy(dtype=float), x_held, seed)
        error = float(((forecast - truth) ** 2).sum())
        baseline = float(((float(y_fit.mean()) - truth) ** 2).sum())
    return error, baseline


def _numeric(x: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)


def _as_matrix(x: pd.Series) -> np.ndarray:
    """A number column as floats (missing: NaN); anything else as text, missing NaN."""
    if _numeric(x):
        return x.to_numpy(dtype=float, na_value=np.nan).reshape(-1, 1)
    text = x.astype(str).to_numpy(dtype=object, copy=True)
    text[x.isna().to_numpy()] = np.nan
    return text.reshape(-1, 1)


def _class_forecast(
    x_fit: pd.Series, y_fit: pd.Series, x_held: pd.Series, classes: np.ndarray, seed: int
) -> np.ndarray:
    """Held-out rows' probabilities of ``classes`` (sorted), from ``x`` alone."""
    if _numeric(x_fit):
        tree = DecisionTreeClassifier(
            max_leaf_nodes=LEAVES, min_samples_leaf=MIN_LEAF, random_state=seed
        ).fit(_as_matrix(x_fit), y_fit.to_numpy())
        return np.asarray(tree.predict_proba(_as_matrix(x_held)))  # sorted, as ``classes``
    if len(classes) == 1:
        return np.ones((len(x_held), 1))
    binary = len(classes) == 2
    encoder = TargetEncoder(target_type="binary" if binary else "multiclass", random_state=seed)
    encoder.fit(_as_matrix(x_fit), y_fit.to_numpy())
    encoded = encoder.transform(_as_matrix(x_held))  # classes_ sorted, as ``classes``
    if binary:
        return np.column_stack([1.0 - encoded[:, 0], encoded[:, 0]])
    return np.asarray(encoded)


def _value_forecast(
    x_fit: pd.Series, y_fit: np.ndarray, x_held: pd.Series, seed: int
) -> np.ndarray:
    if _numeric(x_fit):
        tree = DecisionTreeRegressor(
            max_leaf_nodes=LEAVES, min_samples_leaf=MIN_LEAF, random_state=seed
        ).fit(_as_matrix(x_fit), y_fit)
        return np.asarray(tree.predict(_as_matrix(x_held)))
    encoder = TargetEncoder(target_type="continuous", random_state=seed)
    encoder.fit(_as_matrix(x_fit), y_fit)
    return np.asarray(encoder.transform(_as_matrix(x_held))[:, 0])
