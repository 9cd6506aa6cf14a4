"""The shipped configuration (committed best params and imputation plan) meets the quality bar."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from mlops.config import PATHS, Params
from mlops.data.splitting import split
from mlops.features.imputation import ImputationPlan
from mlops.features.pipeline import build_pipeline
from mlops.io import files
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def scored(adult: pd.DataFrame, params: Params) -> tuple[float, float]:
    plan = ImputationPlan.from_dict(files.read_json(ROOT / PATHS.imputation))
    best = files.read_json(ROOT / PATHS.best_params)
    train, test = split(adult, plan.target, params.split.test_size, params.seed, params.data.task)
    model = build_pipeline(plan, best["family"], best["params"], params.seed, params.data.task)
    model.fit(train[plan.names()], train[plan.target])
    proba = model.predict_proba(test[plan.names()])[:, 1]
    threshold = params.evaluate.threshold
    return roc_auc_score(test[plan.target], proba), accuracy_score(
        test[plan.target], proba >= threshold
    )


def test_roc_auc_on_the_held_out_split(scored: tuple[float, float]) -> None:
    assert scored[0] >= 0.92


def test_accuracy_on_the_held_out_split(scored: tuple[float, float]) -> None:
    assert scored[1] >= 0.86


def test_the_committed_metrics_match_a_fresh_fit(scored: tuple[float, float]) -> None:
    # reports/metrics.json is what `dvc repro` produced; a fresh fit must agree exactly.
    metrics = files.read_json(ROOT / PATHS.metrics)
    assert metrics["roc_auc"] == round(scored[0], 6)
    assert metrics["accuracy"] == round(scored[1], 6)
