"""Feature value: permutation importance on a held-out part of the training split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.config import ImportanceConfig
from mlops.errors import CheckFailed
from mlops.importance import indistinguishable, measure

CONFIG = ImportanceConfig(
    enabled=True, holdout=0.3, max_rows=2000, n_repeats=5, z=2.0, scoring="roc_auc", drop=False
)
FEATURES = ["relationship", "capital_gain", "education", "age", "noise"]


@pytest.fixture(scope="module")
def train(adult_sample: pd.DataFrame) -> pd.DataFrame:
    noise = np.random.default_rng(0).normal(size=len(adult_sample))
    return adult_sample.assign(noise=noise)


def test_signal_is_told_apart_from_noise(train: pd.DataFrame) -> None:
    importances, method = measure(train, FEATURES, "income", CONFIG, seed=0)
    assert list(importances) == FEATURES
    assert importances["relationship"].zero is False
    assert importances["capital_gain"].zero is False
    assert importances["noise"].zero is True
    assert importances["relationship"].mean > 10 * abs(importances["noise"].mean)
    assert "noise" in indistinguishable(importances)
    assert method == {"scoring": "roc_auc", "fit_rows": 1400, "held_out_rows": 600}


def test_the_same_seed_gives_the_same_importances(train: pd.DataFrame) -> None:
    first, _ = measure(train, FEATURES, "income", CONFIG, seed=1)
    again, _ = measure(train, FEATURES, "income", CONFIG, seed=1)
    assert first == again


def test_the_training_frame_is_left_alone(train: pd.DataFrame) -> None:
    before = train.copy()
    measure(train, FEATURES, "income", CONFIG, seed=0)
    pd.testing.assert_frame_equal(train, before)


def test_a_high_cardinality_text_feature_still_works(train: pd.DataFrame) -> None:
    codes = pd.Series([f"c{i % 400}" for i in range(len(train))], dtype="str")
    importances, _ = measure(train.assign(code=codes), ["age", "code"], "income", CONFIG, 0)
    assert set(importances) == {"age", "code"}


def test_too_few_rows_is_a_clear_error(train: pd.DataFrame) -> None:
    tiny = pd.concat([train[train.income == 1].head(1), train[train.income == 0].head(20)])
    with pytest.raises(CheckFailed, match="too few rows to measure feature importance"):
        measure(tiny, ["age"], "income", CONFIG, seed=0)


def test_each_importance_belongs_to_its_own_feature(train: pd.DataFrame) -> None:
    """Text columns are encoded apart from numbers: the names must still line up."""
    noise = pd.Series(np.random.default_rng(1).choice(["a", "b", "c"], len(train)), dtype="str")
    features = ["capital_gain", "noise_text", "age", "relationship"]
    importances, _ = measure(train.assign(noise_text=noise), features, "income", CONFIG, 0)
    assert list(importances) == features
    assert [importances[n].zero for n in features] == [False, True, False, False]
