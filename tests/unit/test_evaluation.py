"""Held-out metrics, calibration, overfitting and the flat metrics file (binary; the other
tasks are in test_evaluation_tasks.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from mlops.config import EvaluateConfig, Params
from mlops.evaluation.report import (
    ECE,
    REPORTS,
    calibration_table,
    class_calibration,
    class_ece,
    drawn_ece,
    ece_noise,
    expected_calibration_error,
    flat_metrics,
    margin_noise,
    overfit_gap,
    rounded,
    score,
    undefined,
)
from mlops.tasks.metrics import METRICS, Prediction, metrics_for, report_names
from mlops.tasks.task import get_task

BINARY = get_task("binary")
Y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7])


def binary_prediction(proba: np.ndarray, threshold: float = 0.5) -> Prediction:
    """What Binary.predict gives for these positive-class probabilities."""
    both = np.column_stack([1 - proba, proba])
    return Prediction((proba >= threshold).astype("int64"), both, (0, 1))


@pytest.fixture
def config(params: Params) -> EvaluateConfig:
    return params.evaluate.model_copy(update={"threshold": 0.5, "calibration_bins": 2})


def test_score_is_every_binary_metric_and_ece_matching_scikit_learn(
    config: EvaluateConfig,
) -> None:
    values = score(BINARY, Y, binary_prediction(P), config)
    assert list(values) == [*metrics_for("binary"), ECE]
    assert values["roc_auc"] == pytest.approx(metrics.roc_auc_score(Y, P), abs=1e-6)
    assert values["pr_auc"] == pytest.approx(metrics.average_precision_score(Y, P), abs=1e-6)
    # Predicted positive: 0.8, 0.9, 0.6, 0.7 -> 3 TP, 1 FP, 1 FN, 3 TN.
    assert values["accuracy"] == pytest.approx(6 / 8)
    assert values["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert values["brier"] == pytest.approx(np.mean((P - Y) ** 2), abs=1e-6)
    assert values["log_loss"] == pytest.approx(metrics.log_loss(Y, P), abs=1e-6)
    assert values[ECE] == pytest.approx(0.5 * 0.0125 + 0.5 * 0.0)
    assert all(v is None or round(v, 6) == v for v in values.values())


def test_the_threshold_moves_label_metrics_only(config: EvaluateConfig) -> None:
    at_half = score(BINARY, Y, binary_prediction(P, 0.5), config)
    higher = score(BINARY, Y, binary_prediction(P, 0.75), config)
    assert higher["f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))
    assert higher["roc_auc"] == at_half["roc_auc"]


def test_a_ranking_metric_on_one_class_is_none_with_a_reason(config: EvaluateConfig) -> None:
    ones = np.ones(4, dtype=int)
    values = score(BINARY, ones, binary_prediction(np.full(4, 0.7)), config)
    assert values["roc_auc"] is None
    assert values["pr_auc"] is None
    assert values["accuracy"] == 1.0
    reasons = undefined(BINARY, ones, values)
    assert reasons == {
        "roc_auc": "the rows hold a single class",
        "pr_auc": "the rows hold a single class",
    }


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


@pytest.mark.parametrize("classes", [2, 5])
def test_drawn_ece_is_class_ece(classes: int) -> None:
    """The fast ECE of drawn labels equals the calibration table's, class by class."""
    rng = np.random.default_rng(classes)
    proba = rng.dirichlet(np.ones(classes), size=300)
    prediction = Prediction(proba.argmax(axis=1), proba, tuple(range(classes)))
    calibrated = [classes - 1] if classes == 2 else list(range(classes))
    for _ in range(5):
        labels = rng.integers(0, classes, size=300)
        table = class_calibration(labels, prediction, calibrated, bins=10)
        assert drawn_ece(proba, labels, calibrated, 10) == pytest.approx(
            class_ece(table), abs=1e-12
        )


def test_ece_noise_covers_a_calibrated_model_and_falls_with_rows() -> None:
    """Labels truly drawn from the probabilities (a perfectly calibrated model) score an
    ECE within the noise figure about 95 % of the time; the figure is far from 0 on 180
    rows and shrinks as rows grow."""
    rng = np.random.default_rng(7)
    noise = {}
    for rows in (180, 5000):
        p = rng.beta(2, 3, size=rows)
        prediction = binary_prediction(p)
        noise[rows] = ece_noise(prediction, [1], bins=10, seed=0)
        within = [
            class_ece(class_calibration((rng.random(rows) < p).astype(int), prediction, [1], 10))
            <= noise[rows]
            for _ in range(200)
        ]
        assert 0.88 <= np.mean(within) <= 0.99, (rows, np.mean(within))
    assert noise[180] > 0.08  # a bound of 0.05 or 0.1 would fail such a model on noise
    assert noise[5000] < noise[180] / 3
    assert ece_noise(binary_prediction(P), [1], 10, seed=0) == ece_noise(
        binary_prediction(P), [1], 10, seed=0
    )  # seeded: evaluate's output is reproducible


def test_binary_calibration_is_the_positive_class_only() -> None:
    table = REPORTS["binary"].calibration(Y, binary_prediction(P), 2)
    assert table is not None
    assert set(table["class"]) == {1}
    assert table["fraction_positive"].tolist() == [0.25, 0.75]


@pytest.mark.parametrize(
    ("metric", "train", "test", "expected"),
    [("roc_auc", 0.95, 0.90, 0.05), ("log_loss", 0.20, 0.30, 0.10), ("roc_auc", 0.8, 0.9, -0.1)],
)
def test_overfit_gap_is_positive_when_train_looks_better(
    metric: str, train: float, test: float, expected: float
) -> None:
    assert overfit_gap(metric, train, test) == pytest.approx(expected)


def test_binary_tables_are_finite_and_per_row_for_confusion() -> None:
    tables = REPORTS["binary"].tables(Y, binary_prediction(P))
    assert set(tables) == {"roc", "pr", "confusion"}
    assert np.isfinite(tables["roc"].to_numpy()).all()
    assert tables["confusion"]["predicted"].tolist() == (P >= 0.5).astype(int).tolist()
    assert tables["confusion"]["actual"].tolist() == Y.tolist()


def test_rounded_turns_nan_into_none() -> None:
    assert rounded(float("nan")) is None
    assert rounded(None) is None
    assert rounded(0.1234567) == 0.123457


def _details(correlation: float | None, worst: float | None) -> dict[str, object]:
    test = dict.fromkeys([*metrics_for("binary"), ECE], 0.5) | {"roc_auc": 0.9}
    return {
        "metric": "roc_auc",
        "test": test,
        "train": test | {"roc_auc": 0.95},
        "baselines": {"majority": {"roc_auc": 0.5}, "logistic": {"roc_auc": 0.85}},
        "business": {
            "value": 7.0,
            "best_threshold": 0.2,
            "value_at_threshold": 6.0,
            "correlation": {"spearman": correlation, "reason": "no tuning trials table"},
        },
        "majority_accuracy": 0.5,
        "calibration": {"bins": 10, "noise": 0.04},
        "margin_noise": {"majority": 0.01, "logistic": 0.02},
        "slices": {
            "worst": worst,
            "gap": None,
            "too_small": 2,
            "slices": [{"attribute": "sex", "slice": "F"}],
            "unmeasured": [],
        },
        "fairness": {
            "protected": ["sex"],
            "worst": {
                "selection_rate_ratio": {"value": 0.4},
                "selection_rate_ratio_adjusted": {"value": 0.9},
                "tpr_gap": {"value": 0.05},
            },
            "too_small": [],
        },
    }


def test_flat_metrics_are_flat_known_names_and_omit_the_unavailable() -> None:
    flat, missing = flat_metrics(_details(correlation=None, worst=0.8))
    assert "business_correlation" not in flat
    assert missing["business_correlation"] == "no tuning trials table"
    assert "slice_gap" not in flat
    assert missing["slice_gap"] == "no attribute has two measured slices"
    assert flat["overfit_gap"] == pytest.approx(0.05)
    assert flat["slice_worst"] == 0.8
    assert flat["slices_too_small"] == 2.0
    assert (flat["tpr_gap"], flat["fairness_groups_too_small"]) == (0.05, 0.0)
    assert set(flat) <= set(report_names("binary", BINARY.baselines))
    assert all(isinstance(v, float) for v in flat.values())
    assert list(flat) == sorted(flat)


def test_no_slice_attribute_is_the_reason_slices_are_left_out() -> None:
    details = _details(correlation=0.7, worst=None)
    details["slices"] = {"worst": None, "gap": None, "too_small": 0, "slices": [], "unmeasured": []}
    _, missing = flat_metrics(details)
    assert missing["slice_worst"] == (
        "no slice could be measured (evaluate.slices names no attribute)"
    )


def test_unmeasured_slices_are_named_with_their_rows_and_reasons() -> None:
    details = _details(correlation=0.7, worst=None)
    details["slices"] = {
        "worst": None, "gap": None, "too_small": 1, "slices": [{}, {}],
        "unmeasured": [
            {"slice": "sex=F", "rows": 30, "reason": "too small: 30 rows < min_rows 50"},
            {"slice": "sex=M", "rows": 70,
             "reason": "not measurable: the rows hold a single class"},
        ],
    }  # fmt: skip
    flat, missing = flat_metrics(details)
    assert "slice_worst" not in flat
    assert missing["slice_worst"] == (
        "no slice could be measured: sex=F (too small: 30 rows < min_rows 50); "
        "sex=M (not measurable: the rows hold a single class)"
    )
    assert missing["slice_gap"].startswith("no attribute has two measured slices: sex=F (")


def test_a_test_metric_left_out_is_not_in_metrics_json() -> None:
    details = _details(correlation=0.7, worst=0.8)
    details["test"] = {**details["test"], "pr_auc": None}  # type: ignore[dict-item]
    flat, _ = flat_metrics(details)
    assert "pr_auc" not in flat
    assert "roc_auc" in flat


def test_every_name_flat_metrics_can_write_is_a_gate_metric() -> None:
    flat, missing = flat_metrics(_details(correlation=0.7, worst=0.8) | {"slices": {
        "worst": 0.8, "gap": 0.1, "too_small": 0, "slices": [{}], "unmeasured": []}})  # fmt: skip
    assert missing == {}
    assert set(flat) == set(report_names("binary", BINARY.baselines))


# --- the noise in a lead over a baseline (the gate's baseline_margin) ------------------


def _equally_good(rows: int, seed: int) -> tuple[np.ndarray, Prediction, Prediction]:
    """Labels and two models of the same skill whose errors differ (each sees the signal
    through its own noise)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    y = (signal + rng.normal(size=rows) > 0).astype("int64")
    first, second = (1 / (1 + np.exp(-(signal + rng.normal(size=rows)))) for _ in range(2))
    return y, binary_prediction(first), binary_prediction(second)


def test_a_lead_over_an_identical_baseline_has_no_noise() -> None:
    y, model, _ = _equally_good(300, seed=0)
    assert margin_noise(METRICS["roc_auc"], y, model, model, stratify=True, seed=0) == 0.0


def test_the_noise_in_a_lead_shrinks_with_the_test_rows() -> None:
    roc_auc = METRICS["roc_auc"]
    small, large = (
        margin_noise(roc_auc, *_equally_good(rows, seed=1), stratify=True, seed=1)
        for rows in (200, 3200)
    )
    assert small is not None
    assert large is not None
    # 16 times the rows: a quarter of the spread (sqrt), within the bootstrap's own error.
    assert 2.5 < small / large < 6.5


def test_a_model_no_worse_than_the_baseline_rarely_trails_it_by_more_than_the_noise() -> None:
    # The gate passes a model short of a baseline's bound by less than the noise. Two
    # equally good models' observed lead falls below minus the noise about 5 % of the time
    # (the quantile; 9 of 200 test splits of 300 rows, measured), where with no noise
    # allowed it would be half: 2 of these 20.
    roc_auc, below = METRICS["roc_auc"], 0
    for seed in range(20):
        y, model, baseline = _equally_good(300, seed=100 + seed)
        noise = margin_noise(roc_auc, y, model, baseline, stratify=True, seed=seed)
        assert noise is not None
        assert noise > 0.005
        below += roc_auc(y, model) - roc_auc(y, baseline) < -noise
    assert below <= 3


def test_above_the_row_cap_the_noise_is_a_smaller_draw_scaled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops.evaluation import report

    y, model, baseline = _equally_good(4000, seed=2)
    full = margin_noise(METRICS["roc_auc"], y, model, baseline, stratify=True, seed=3)
    monkeypatch.setattr(report, "MARGIN_MAX_ROWS", 1000)
    capped = margin_noise(METRICS["roc_auc"], y, model, baseline, stratify=True, seed=3)
    assert full is not None
    assert capped is not None
    assert capped == pytest.approx(full, rel=0.35)


def test_a_stratified_draw_keeps_a_rare_class_so_the_metric_stays_defined() -> None:
    rng = np.random.default_rng(4)
    y = np.array([0] * 62 + [1] * 37 + [2])  # a class of one test row
    proba = rng.dirichlet(np.ones(3), size=100)
    model = Prediction(proba.argmax(axis=1), proba, (0, 1, 2))
    other = Prediction(proba[::-1].argmax(axis=1), proba[::-1], (0, 1, 2))
    auc = METRICS["roc_auc_ovr"]
    assert margin_noise(auc, y, model, other, stratify=True, seed=0) is not None
    # 100 rows drawn at random lose the lone row a third of the time ((99/100)^100), and
    # one-vs-rest ROC AUC is undefined without it: too often to measure a noise.
    assert margin_noise(auc, y, model, other, stratify=False, seed=0) is None
