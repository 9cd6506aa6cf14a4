"""A model fitted in the test session on a fixed sample, so its predictions are stable."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mlops.config import ImputeConfig
from mlops.features.imputation import ImputationPlan, plan_imputation, read_quality
from mlops.features.pipeline import build_pipeline

TARGET = "income"
# Protected attributes stay out of the model (they remain columns for slices).
PROTECTED = ("race", "sex", "native_country")
# Regularised for a 2,100-row training sample (the demo's defaults would overfit it).
HGB_PARAMS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.03,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


@pytest.fixture(scope="session")
def splits(adult_sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        adult_sample, test_size=0.3, stratify=adult_sample[TARGET], random_state=0
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


# Fixed here, not read from params.yaml, so the pinned predictions only move when
# the pipeline's behaviour does.
IMPUTE = ImputeConfig.model_validate(
    {
        "policy": "impute",
        "numeric": "median",
        "categorical": "most_frequent",
        "overrides": {},
        "indicators": False,
        "knn": {"n_neighbors": 5},
        "auto": {"family": "hist_gradient_boosting", "cv_folds": 2, "max_rows": 1000},
    }
)


@pytest.fixture(scope="session")
def plan(splits: tuple[pd.DataFrame, pd.DataFrame]) -> ImputationPlan:
    train = splits[0]
    features = [c for c in train.columns if c != TARGET and c not in PROTECTED]
    report = {"features": features, "protected": list(PROTECTED)}
    quality = read_quality(report, list(train.columns), TARGET)
    return plan_imputation(train, TARGET, quality, IMPUTE, seed=0)


@pytest.fixture(scope="session")
def model(splits: tuple[pd.DataFrame, pd.DataFrame], plan: ImputationPlan) -> Pipeline:
    train = splits[0]
    pipeline = build_pipeline(plan, "hist_gradient_boosting", HGB_PARAMS, seed=0, task="binary")
    return pipeline.fit(train[plan.names()], train[TARGET])
