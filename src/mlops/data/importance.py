"""Feature value versus cost: permutation importance on held-out data.

A quick gradient-boosting probe (classifier or regressor, as the task says) is
fitted on part of the training split and each feature is shuffled on the
held-out rest, ``n_repeats`` times, scored by a metric of the task
(tasks.metrics). A feature is indistinguishable from zero when the mean score
drop over the repeats is at most ``z`` standard deviations of it (mean - z * sd
<= 0): it costs data collection, storage and attack surface, and buys nothing;
``validate.importance.policy`` says what happens to it. The test split is never
touched: it stays unseen until evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.inspection import permutation_importance
from sklearn.preprocessing import OrdinalEncoder

from mlops.config import ImportanceConfig
from mlops.data.splitting import time_split
from mlops.tasks.families import build_estimator, get_family
from mlops.tasks.metrics import get_metric
from mlops.tasks.task import Task, get_task

_PROBE_FAMILY = "hist_gradient_boosting"
_NATIVE_CATEGORIES = get_family(_PROBE_FAMILY).max_categories or 0
_PROBE = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False}


@dataclass(frozen=True)
class Importance:
    mean: float
    std: float
    zero: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    train: pd.DataFrame,
    features: Sequence[str],
    target: str,
    config: ImportanceConfig,
    *,
    seed: int,
    task_name: str,
    groups: str | None = None,
    time: str | None = None,
) -> tuple[dict[str, Importance], dict[str, Any]]:
    """Each feature's permutation importance for ``task_name``, and how it was measured;
    with ``groups`` (split.groups), the held-out rows are whole groups; with ``time``
    (split.time), the latest rows."""
    task = get_task(task_name)
    parts = holdout(train, target, config, seed=seed, task=task, groups=groups, time=time)
    return measure_held_out(parts, features, target, config, seed=seed, task=task)


def measure_held_out(
    parts: tuple[pd.DataFrame, pd.DataFrame],
    features: Sequence[str],
    target: str,
    config: ImportanceConfig,
    *,
    seed: int,
    task: Task,
) -> tuple[dict[str, Importance], dict[str, Any]]:
    """``measure`` on the (fitted, held-out) rows ``holdout`` gave, which the leakage
    check shares."""
    fit, held_out = parts
    # Encoded once: shuffling a column's codes is shuffling its values, and the
    # repeats then cost only predictions.
    encoder, model = probe(fit[list(features)], task, seed)
    x_fit = encoder.fit_transform(fit[list(features)])
    model.fit(x_fit, fit[target])
    x_held_out = encoder.transform(held_out[list(features)])
    result = permutation_importance(
        model,
        x_held_out,
        held_out[target],
        scoring=task.scorer(get_metric(config.scoring, task.name)),
        n_repeats=config.n_repeats,
        random_state=seed,
        n_jobs=1,
    )
    measured = {
        name: Importance(
            mean=round(float(mean), 6),
            std=round(float(std), 6),
            zero=bool(mean - config.z * std <= 0),
        )
        for name, mean, std in zip(
            x_held_out.columns, result.importances_mean, result.importances_std, strict=True
        )
    }
    importances = {name: measured[name] for name in features}  # numbers came first
    method = {"scoring": config.scoring, "fit_rows": len(fit), "held_out_rows": len(held_out)}
    return importances, method


def holdout(
    train: pd.DataFrame,
    target: str,
    config: ImportanceConfig,
    *,
    seed: int,
    task: Task,
    groups: str | None = None,
    time: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows feature value is fitted on and the rows it is scored on: a sample of
    ``config.max_rows`` of the training split, ``config.holdout`` of it held out (whole
    groups with ``groups``, the latest rows with ``time``), the same for every probe."""
    sample = task.sample(train, target, config.max_rows, seed, keep=2)  # held out and fitted
    if time is not None:
        return time_split(
            sample, target, config.holdout, task.name, time=time,
            share="validate.importance.holdout",
        )  # fmt: skip
    return task.split(
        sample, target, config.holdout, seed,
        "feature importance (validate.importance.holdout)", groups=groups,
    )  # fmt: skip


def probe(features: pd.DataFrame, task: Task, seed: int) -> tuple[ColumnTransformer, Any]:
    """The cheap model feature value and cost are measured with: numbers pass through
    in one step, text columns become ordinal codes (each its own) in another. One step
    per column made a prediction on 1,000 numeric columns cost 650 ms in scikit-learn's
    bookkeeping, and a feature's bytes included its step's. The output names each
    column as ``features`` does, numbers first. Steps have fixed names: a column's own
    may be one scikit-learn refuses for a step (``remainder``, ``a__b``)."""
    kinds = {name: pd.api.types.is_numeric_dtype(features[name]) for name in features.columns}
    numeric = [name for name, number in kinds.items() if number]
    text = [name for name, number in kinds.items() if not number]
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )
    steps = [("numbers", "passthrough", numeric), ("text", encoder, text)]
    # Beyond the most categories the family splits on natively, the ordinal codes are
    # used as numbers (good enough for a probe).
    native = [str(name) for name in text if features[name].nunique() <= _NATIVE_CATEGORIES]
    model = build_estimator(_PROBE_FAMILY, task.name, _PROBE, native, seed)
    columns = ColumnTransformer([s for s in steps if s[2]], verbose_feature_names_out=False)
    return columns.set_output(transform="pandas"), model


def indistinguishable(importances: dict[str, Importance]) -> list[str]:
    return [name for name, importance in importances.items() if importance.zero]
