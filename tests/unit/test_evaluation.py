"""Held-out metrics, calibration, overfitting and the flat metrics file."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
from sklearn import metrics

from mlops.config import EvaluateConfig, MetricName, Params
from mlops.evaluation import (
    HIGHER_IS_BETTER,
    SCORERS,
    calibration_table,
    curves,
    expected_calibration_error,
    flat_metrics,
    metric_value,
    overfit_gap,
    score,
)
from mlops.gating import METRIC_NAMES

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7])


@pytest.fixture
def config(params: Params) -> EvaluateConfig:
    return params.evaluate.model_copy(update={"threshold": 0.5, "calibration_bins": 2})


def test_metric_values_match_scikit_learn() -> None:
    assert metric_value("roc_auc", Y, P, 0.5) == pytest.approx(metrics.roc_auc_score(Y, P))
    assert metric_value("pr_auc", Y, P, 0.5) == pytest.approx(metrics.average_precision_score(Y, P))
    # Predicted positive: 0.8, 0.9, 0.6, 0.7 -> 3 TP, 1 FP, 1 FN, 3 TN.
    assert metric_value("accuracy", Y, P, 0.5) == pytest.approx(6 / 8)
    assert metric_value("f1", Y, P, 0.5) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert metric_value("brier", Y, P, 0.5) == pytest.approx(np.mean((P - Y) ** 2))
    assert metric_value("log_loss", Y, P, 0.5) == pytest.approx(metrics.log_loss(Y, P))


def test_threshold_moves_threshold_metrics_only() -> None:
    assert metric_value("f1", Y, P, 0.75) == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))
    assert metric_value("roc_auc", Y, P, 0.75) == metric_value("roc_auc", Y, P, 0.5)


def test_ranking_metric_on_one_class_is_nan_not_an_error() -> None:
    ones = np.ones(4, dtype=int)
    assert math.isnan(metric_value("roc_auc", ones, np.full(4, 0.7), 0.5))
    assert math.isnan(metric_value("pr_auc", ones, np.full(4, 0.7), 0.5))
    assert metric_value("accuracy", ones, np.full(4, 0.7), 0.5) == 1.0


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        metric_value("auc", Y, P, 0.5)


def test_calibration_table_bins_and_rates() -> None:
    table = calibration_table(Y, P, bins=2)
    # [0, 0.5): 0.1 0.4 0.35 0.2 -> 1 positive of 4; [0.5, 1]: 0.8 0.9 0.6 0.7 -> 3 of 4.
    assert table["rows"].tolist() == [4, 4]
    assert table["fraction_positive"].tolist() == [0.25, 0.75]
    assert table["mean_predicted"].tolist() == pytest.approx([0.2625, 0.75])
    assert expected_calibration_error(table) == pytest.approx(0.5 * 0.0125 + 0.5 * 0.0)


def test_probability_one_falls_in_the_last_bin() -> None:
    table = calibration_table(np.array([1, 0]), np.array([1.0, 0.0]), bins=10)
    assert table["bin"].tolist() == [0, 9]
    assert expected_calibration_error(table) == 0.0


def test_score_reports_every_metric_rounded(config: EvaluateConfig) -> None:
    values = score(Y, P, config)
    assert set(values) == set(HIGHER_IS_BETTER) == {*SCORERS, "ece"}
    assert all(round(v, 6) == v for v in values.values())


@pytest.mark.parametrize(
    ("metric", "train", "test", "expected"),
    [("roc_auc", 0.95, 0.90, 0.05), ("log_loss", 0.20, 0.30, 0.10), ("roc_auc", 0.8, 0.9, -0.1)],
)
def test_overfit_gap_is_positive_when_train_looks_better(
    metric: str, train: float, test: float, expected: float
) -> None:
    assert overfit_gap(metric, train, test) == pytest.approx(expected)


def test_curves_tables_are_finite_and_per_row_for_confusion() -> None:
    tables = curves(Y, P, 0.5)
    assert np.isfinite(tables["roc"].to_numpy()).all()
    assert tables["confusion"]["predicted"].tolist() == (P >= 0.5).astype(int).tolist()


def _details(correlation: float | None, worst: float | None) -> dict[str, object]:
    test = dict.fromkeys(HIGHER_IS_BETTER, 0.5) | {"roc_auc": 0.9}
    return {
        "metric": "roc_auc",
        "test": test,
        "train": test | {"roc_auc": 0.95},
        "baselines": {"majority": {"roc_auc": 0.5}, "logistic": {"roc_auc": 0.85}},
        "business": {
            "value": 7.0,
            "best_threshold": 0.2,
            "value_at_threshold": 6.0,
            "correlation": {"spearman": correlation},
        },
        "slices": {"worst": worst, "gap": None, "too_small": 2},
    }


def test_flat_metrics_are_flat_known_names_and_omit_the_unavailable() -> None:
    flat = flat_metrics(_details(correlation=None, worst=0.8))
    assert "business_correlation" not in flat
    assert "slice_gap" not in flat
    assert flat["overfit_gap"] == pytest.approx(0.05)
    assert flat["slice_worst"] == 0.8
    assert flat["slices_too_small"] == 2.0
    assert set(flat) <= set(get_args(MetricName))
    assert all(isinstance(v, float) for v in flat.values())
    assert list(flat) == sorted(flat)


def test_every_name_flat_metrics_can_write_is_a_gate_metric() -> None:
    flat = flat_metrics(_details(correlation=0.7, worst=0.8)) | {"slice_gap": 0.1}
    assert set(flat) == set(METRIC_NAMES)
