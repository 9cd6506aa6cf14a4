"""Drift: false alarms near the tests' level on undrifted windows, detection of a shift of
known size, for each task, on both sides of the 1,000-row rule.

Rates are measured over ``WINDOWS`` seeded bootstrap windows of the population the
reference was profiled on (tests/unit/monitoring_cases.py). To keep each test fast,
the feature tests use the first ``FEATURES`` features of the reference (plus the
categorical one in the binary case); the reference is a plain dict, so a subset of it
is a valid reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import UsageError
from mlops.monitoring.drift import (
    Thresholds,
    column_drift,
    feature_drift,
    prediction_drift,
    psi,
    psi_band,
)
from tests.unit.monitoring_cases import TASK_NAMES, Case, case

WINDOWS = 200
SMALL, LARGE = 200, 2000  # rows of a window: the p-value tests, then the distances
FEATURES = 5
SHIFT_SD = 0.5


def _subset(reference: dict[str, Any]) -> dict[str, Any]:
    names = list(reference["features"])[:FEATURES] + (
        ["grade"] if "grade" in reference["features"] else []
    )
    return reference | {"features": {n: reference["features"][n] for n in names}}


def _rates(c: Case, rows: int, shift: float = 0.0) -> dict[str, Any]:
    """Per window: each feature's verdict, the dataset verdict and the prediction's."""
    reference = _subset(c.reference)
    names = list(reference["features"])
    numeric = [n for n in names if reference["features"][n]["kind"] == "numeric"]
    spread = c.features[numeric].std()
    features, datasets, predictions = [], [], []
    for seed in range(WINDOWS):
        frame, outputs, _ = c.window(rows, seed)
        if shift:
            frame = frame.assign(**{n: frame[n] + shift * spread[n] for n in numeric})
            outputs = c.answer(frame)  # the model answers the shifted population
        found = feature_drift(frame, reference, Thresholds())
        features.append([found["features"][n]["drifted"] for n in names])
        datasets.append(found["drifted"])
        predictions.append(prediction_drift(outputs, c.reference, Thresholds())["drifted"])
    return {
        "features": pd.DataFrame(features, columns=names).astype(float).mean(),
        "dataset": float(np.mean(datasets)),
        "prediction": float(np.mean(predictions)),
    }


@pytest.mark.parametrize("task", TASK_NAMES)
def test_small_windows_false_alarm_rate_is_near_the_level(task: str) -> None:
    rates = _rates(case(task), SMALL)
    # KS and chi-squared at p < 0.05: about 5 % per feature (a little less where the
    # bootstrap's ties make KS conservative). The dataset verdict needs half the
    # features; correlated features (radius, perimeter, area and grade in the binary
    # case) drift together, so it is at most about one feature's rate, not far below.
    assert 0.01 <= rates["features"].mean() <= 0.08, rates
    assert rates["features"].max() <= 0.1, rates
    assert rates["dataset"] <= 0.1, rates
    assert rates["prediction"] <= 0.1, rates


@pytest.mark.parametrize("task", TASK_NAMES)
def test_large_windows_do_not_alarm_on_sampling_noise(task: str) -> None:
    rates = _rates(case(task), LARGE)
    assert rates["features"].max() <= 0.01, rates
    assert rates["dataset"] == 0.0, rates
    assert rates["prediction"] == 0.0, rates


@pytest.mark.parametrize(("task", "rows"), [(t, r) for t in TASK_NAMES for r in (SMALL, LARGE)])
def test_a_half_sd_mean_shift_is_detected(task: str, rows: int) -> None:
    rates = _rates(case(task), rows, shift=SHIFT_SD)
    shifted = [n for n in rates["features"].index if n != "grade"]
    assert rates["features"][shifted].min() >= 0.9, rates
    assert rates["dataset"] >= 0.9, rates


@pytest.mark.parametrize(("task", "rows"), [(t, r) for t in TASK_NAMES for r in (SMALL, LARGE)])
def test_a_shifted_prediction_distribution_is_detected(task: str, rows: int) -> None:
    c = case(task)
    weights = c.tilted()
    detected = []
    for seed in range(WINDOWS):
        drawn = np.random.default_rng(seed).choice(len(weights), rows, p=weights)
        outputs = c.outputs.iloc[drawn].reset_index(drop=True)
        detected.append(prediction_drift(outputs, c.reference, Thresholds())["drifted"])
    assert np.mean(detected) >= 0.9


@pytest.mark.parametrize("rows", [SMALL, LARGE])
def test_a_doubled_category_share_is_detected(rows: int) -> None:
    c = case("binary")
    profile = c.reference["features"]["grade"]
    doubled = 2 * profile["frequencies"]["a"]
    is_a = (c.features["grade"] == "a").to_numpy()
    # Row weights that give category "a" twice its share and keep the others' ratios.
    weights = np.where(is_a, doubled / is_a.sum(), (1 - doubled) / (~is_a).sum())
    detected, clean = [], []
    for seed in range(WINDOWS):
        rng = np.random.default_rng(seed)
        drawn = c.features["grade"].iloc[rng.choice(len(weights), rows, p=weights)]
        detected.append(column_drift(drawn, profile, "grade", Thresholds())["drifted"])
        same = c.features["grade"].iloc[rng.integers(0, len(weights), rows)]
        clean.append(column_drift(same, profile, "grade", Thresholds())["drifted"])
    assert np.mean(detected) >= 0.9
    assert np.mean(clean) <= (0.08 if rows == SMALL else 0.0)


def test_the_test_follows_the_window_size_and_kind() -> None:
    c = case("regression")
    reference = c.reference["features"]
    frame, _, _ = c.window(LARGE, 0)
    tests = {
        (name, rows): column_drift(frame[name].iloc[:rows], reference[name], name, Thresholds())[
            "test"
        ]
        for name in ("bmi", "sex")
        for rows in (1000, 1001)
    }
    assert tests == {
        ("bmi", 1000): "ks",
        ("bmi", 1001): "wasserstein",
        # sex has 2 values: compared as categories, as Evidently does (<= 5 values)
        ("sex", 1000): "chi_squared",
        ("sex", 1001): "jensen_shannon",
    }


def test_per_feature_thresholds_override_the_default() -> None:
    c = case("regression")
    frame, _, _ = c.window(LARGE, 0)
    shifted = frame.assign(bmi=frame["bmi"] + 0.2 * c.features["bmi"].std())
    strict = column_drift(shifted["bmi"], c.reference["features"]["bmi"], "bmi", Thresholds())
    lenient = Thresholds(features={"bmi": {"distance": 0.3}})
    loose = column_drift(shifted["bmi"], c.reference["features"]["bmi"], "bmi", lenient)
    assert strict["drifted"]
    assert not loose["drifted"]
    assert loose["threshold"] == 0.3
    with pytest.raises(UsageError, match="unknown key"):
        Thresholds(features={"bmi": {"distanse": 0.3}})


def test_an_all_null_feature_is_reported_not_counted_as_drift() -> None:
    c = case("regression")
    frame, _, _ = c.window(SMALL, 0)
    found = feature_drift(frame.assign(bmi=np.nan), c.reference, Thresholds())
    assert found["features"]["bmi"]["drifted"] is None
    assert found["features"]["bmi"]["null_rate"] == 1.0
    assert found["tested"] == len(c.reference["features"]) - 1
    with pytest.raises(UsageError, match="lacks feature"):
        feature_drift(frame.drop(columns=["bmi"]), c.reference, Thresholds())


def test_unseen_categories_are_counted_and_drift() -> None:
    profile = case("binary").reference["features"]["grade"]
    values = pd.Series(["a"] * 150 + ["z"] * 50)
    found = column_drift(values, profile, "grade", Thresholds())
    assert found["unseen"] == 50
    assert found["drifted"]


def test_psi_bands() -> None:
    even = np.full(10, 0.1)
    assert psi(even, even) == 0.0
    tilted = np.array([0.15] * 4 + [0.4 / 6] * 6)
    assert psi_band(psi(even, even), (0.1, 0.25)) == "none"
    assert psi_band(psi(even, tilted), (0.1, 0.25)) == "moderate"
    assert psi_band(psi(even, np.array([0.5, 0.5] + [0.0] * 8)), (0.1, 0.25)) == "significant"
