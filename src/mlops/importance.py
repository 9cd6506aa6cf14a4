"""Feature value versus cost: permutation importance on held-out data.

A quick gradient-boosting probe is fitted on part of the training split and
each feature is shuffled on the held-out rest; a feature whose shuffling costs
no more than ``z`` standard deviations of the score is indistinguishable from
zero: it costs data collection, storage and attack surface, and buys nothing.
The test split is never touched: it stays unseen until evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder

from mlops.config import ImportanceConfig
from mlops.errors import CheckFailed

# HistGradientBoosting treats at most 255 categories natively; beyond that the
# ordinal codes are used as numbers (good enough for a probe).
_MAX_NATIVE_CATEGORIES = 250
_PROBE = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False}


@dataclass(frozen=True)
class Importance:
    mean: float
    std: float
    zero: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    train: pd.DataFrame, features: Sequence[str], target: str, config: ImportanceConfig, seed: int
) -> tuple[dict[str, Importance], dict[str, Any]]:
    """Each feature's permutation importance, and how it was measured."""
    sample = _sample(train, target, config.max_rows, seed)
    fit, held_out = _split(sample, target, config.holdout, seed)
    # Encoded once: shuffling a column's codes is shuffling its values, and the
    # repeats then cost only predictions.
    encoder, model = _probe(fit[list(features)], seed)
    x_fit = encoder.fit_transform(fit[list(features)])
    model.fit(x_fit, fit[target])
    result = permutation_importance(
        model,
        encoder.transform(held_out[list(features)]),
        held_out[target],
        scoring=config.scoring,
        n_repeats=config.n_repeats,
        random_state=seed,
        n_jobs=1,
    )
    importances = {
        name: Importance(
            mean=round(float(mean), 6),
            std=round(float(std), 6),
            zero=bool(mean - config.z * std <= 0),
        )
        for name, mean, std in zip(
            features, result.importances_mean, result.importances_std, strict=True
        )
    }
    method = {"scoring": config.scoring, "fit_rows": len(fit), "held_out_rows": len(held_out)}
    return importances, method


def _sample(frame: pd.DataFrame, target: str, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    # Split positions, not the frame: only the sampled rows are ever copied.
    rows = train_test_split(
        np.arange(len(frame)), train_size=max_rows, random_state=seed, stratify=frame[target]
    )[0]
    return frame.iloc[np.sort(rows)]


def _split(
    frame: pd.DataFrame, target: str, holdout: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = frame[target].value_counts()
    if counts.size < 2 or counts.min() * holdout < 1 or counts.min() * (1 - holdout) < 1:
        raise CheckFailed(
            f"too few rows to measure feature importance (class counts {counts.to_dict()}, "
            f"params.yaml validate.importance.holdout {holdout})"
        )
    fit, held_out = train_test_split(
        frame, test_size=holdout, random_state=seed, stratify=frame[target]
    )
    return fit, held_out


def _probe(
    features: pd.DataFrame, seed: int
) -> tuple[ColumnTransformer, HistGradientBoostingClassifier]:
    """Text columns become ordinal codes, numbers pass through; the output keeps the
    columns' order, so importance i belongs to feature i."""
    steps: list[tuple[str, Any, list[str]]] = []
    native = []
    for i, name in enumerate(features.columns):
        if pd.api.types.is_numeric_dtype(features[name]):
            steps.append((name, "passthrough", [name]))
            continue
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
        steps.append((name, encoder, [name]))
        if features[name].nunique() <= _MAX_NATIVE_CATEGORIES:
            native.append(i)
    model = HistGradientBoostingClassifier(
        categorical_features=native or None, random_state=seed, **_PROBE
    )
    return ColumnTransformer(steps, verbose_feature_names_out=False), model


def indistinguishable(importances: dict[str, Importance]) -> list[str]:
    return [name for name, importance in importances.items() if importance.zero]
