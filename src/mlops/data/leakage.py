"""Target leakage: a feature that alone all but gives the target away.

A column recorded after the outcome (the cause of death beside "died", a refund date
beside "churned", an account closed beside "defaulted") makes the model look perfect on
every split, the test split included, and useless in production, where that column is
not known yet when the prediction is made. No later check catches it: the gate sees a
model far above its baselines. So each feature is scored on its own, fitted on part of
the training split and scored on the held-out rest (the rows validate.importance fits
and holds out), by its skill: 1 - its squared error / the prior's, the Brier skill
score for classes (the forecast probabilities against the one-hot labels, the prior the
classes' shares in the fitted rows) and R^2 for numbers (the prior their mean). 1 is a
perfect forecast, 0 no better than the prior.

The one-feature forecasts: a category's is its rows' class shares (or mean), shrunk
towards the prior as few rows back it (scikit-learn's TargetEncoder; missing values
are a category of their own, so a column filled in only for one class is caught); a
number's is a decision tree's leaf (at most ``LEAVES`` leaves, missing values sent to
whichever side fits better), which finds a threshold or a step however sharp.

A strong feature is not a leak: a diamond's carat alone forecasts its price with a
skill of 0.86, a company's profits its market value with 0.68. The default bound,
0.95, is for a feature that all but determines the target (the hours a woman worked,
beside whether she worked: 1.0); validate.leakage.allow keeps one reviewed as known
when predicting. A leak spread over several columns is not caught: a Californian
district's reading score forecasts its test score, the mean of reading and maths,
with 0.945, under the bound. That needs a person who knows when each column is
recorded, and data.drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlops.config import LeakageConfig

LEAVES = 32  # a number's tree: enough steps for a monotone function to score ~0.999
MIN_LEAF = 5  # rows per leaf at least: a leaf of one row memorises, it does not forecast


@dataclass(frozen=True)
class Leakage:
    """Each feature's skill alone on the held-out rows, and what the policy does."""

    skills: dict[str, float]
    suspected: tuple[str, ...]  # at least max_skill and not allowed, most skilful first
    config: LeakageConfig
    rows: dict[str, int]  # {"fit": n, "held_out": n}
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
            "fit_rows": self.rows["fit"],
            "held_out_rows": self.rows["held_out"],
            "skills": dict(self.skills),
            "suspected": list(self.suspected),
        }


def measure(
    fit: pd.DataFrame,
    held_out: pd.DataFrame,
    features: Sequence[str],
    target: str,
    config: LeakageConfig,
    *,
    classification: bool,
    seed: int,
) -> Leakage:
    """Each of ``features`` fitted alone on ``fit`` and scored on ``held_out``."""
    skills = {
        name: round(
            skill(
                fit[name],
                fit[target],
                held_out[name],
                held_out[target],
                classification=classification,
                seed=seed,
            ),
            4,
        )
        for name in features
    }
    suspected = sorted(
        (name for name, value in skills.items()
         if value >= config.max_skill and name not in config.allow),
        key=lambda name: (-skills[name], name),
    )  # fmt: skip
    rows = {"fit": len(fit), "held_out": len(held_out)}
    prior = "each label's share" if classification else "the mean"
    return Leakage(skills, tuple(suspected), config, rows, prior)


def skill(
    x_fit: pd.Series,
    y_fit: pd.Series,
    x_held: pd.Series,
    y_held: pd.Series,
    *,
    classification: bool,
    seed: int,
) -> float:
    """The skill of a forecast of ``y`` from ``x`` alone: 1 - squared error / the prior's
    (at most 1; below 0 when worse than the prior on the held-out rows)."""
    if classification:
        labels = y_fit.astype(str)
        classes = np.array(sorted(pd.unique(labels)))
        truth = (y_held.astype(str).to_numpy()[:, None] == classes[None, :]).astype(float)
        forecast = _class_forecast(x_fit, labels, x_held, classes, seed)
        prior = (labels.to_numpy()[:, None] == classes[None, :]).mean(axis=0)
        error = float(((forecast - truth) ** 2).sum(axis=1).mean())
        baseline = float(((prior[None, :] - truth) ** 2).sum(axis=1).mean())
    else:
        truth = y_held.to_numpy(dtype=float)
        forecast = _value_forecast(x_fit, y_fit.to_numpy(dtype=float), x_held, seed)
        error = float(((forecast - truth) ** 2).mean())
        baseline = float(((float(y_fit.mean()) - truth) ** 2).mean())
    if baseline <= 0.0:  # a held-out target the prior gets exactly: nothing to forecast
        return 0.0
    return 1.0 - error / baseline


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
