"""Properties of the fitted imputers, for any data and any mix of strategies (hypothesis).

For every frame with gaps: no missing value comes out; observed values never
change; rows, columns and their order are kept (indicator columns follow);
and fitting twice gives the same result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.config import ImputeConfig
from mlops.imputation import ImputationPlan, plan_imputation, read_quality
from mlops.modeling import build_imputer

NUMERIC = ("mean", "median", "knn")
CATEGORICAL = ("most_frequent", "missing_category")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, str], bool]:
    """A frame with numeric and text columns with gaps (each column observed at least once)."""
    rows = draw(st.integers(2, 30))
    columns: dict[str, Any] = {}
    strategies: dict[str, str] = {}
    for i in range(draw(st.integers(1, 3))):
        values = draw(st.lists(st.floats(-1e6, 1e6), min_size=rows, max_size=rows))
        columns[f"n{i}"] = _with_gaps(draw, np.array(values, dtype="float64"))
        strategies[f"n{i}"] = draw(st.sampled_from(NUMERIC))
    for i in range(draw(st.integers(0, 2))):
        words = draw(st.lists(st.sampled_from("abcd"), min_size=rows, max_size=rows))
        columns[f"c{i}"] = pd.Series(_with_gaps(draw, np.array(words, dtype=object)), dtype="str")
        strategies[f"c{i}"] = draw(st.sampled_from(CATEGORICAL))
    frame = pd.DataFrame(columns)
    # Shuffle the column order so order preservation is tested, not assumed.
    order = draw(st.permutations(list(frame.columns)))
    return frame[order], strategies, draw(st.booleans())


def _with_gaps(draw: st.DrawFn, values: np.ndarray) -> np.ndarray:
    mask = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    mask[draw(st.integers(0, len(values) - 1))] = False  # at least one observed value
    out = values.copy()
    out[np.array(mask)] = np.nan if out.dtype.kind == "f" else None
    return out


def _plan(frame: pd.DataFrame, strategies: dict[str, str], indicators: bool) -> ImputationPlan:
    config = ImputeConfig.model_validate(
        {
            "policy": "impute",
            "numeric": "median",
            "categorical": "most_frequent",
            "overrides": strategies,
            "indicators": indicators,
            "knn": {"n_neighbors": 3},
            "auto": {"family": "logistic_regression", "cv_folds": 2, "max_rows": 100},
        }
    )
    train = frame.assign(y=0)
    quality = read_quality({}, list(train.columns), "y")
    return plan_imputation(train, "y", quality, config, seed=0)


def _impute(frame: pd.DataFrame, plan: ImputationPlan) -> pd.DataFrame:
    out: pd.DataFrame = build_imputer(plan).fit_transform(frame)
    return out


@SETTINGS
@given(frames())
def test_no_missing_value_comes_out(case: tuple[pd.DataFrame, dict[str, str], bool]) -> None:
    frame, strategies, indicators = case
    out = _impute(frame, _plan(frame, strategies, indicators))
    assert not out.isna().any().any()


@SETTINGS
@given(frames())
def test_observed_values_never_change(case: tuple[pd.DataFrame, dict[str, str], bool]) -> None:
    frame, strategies, indicators = case
    out = _impute(frame, _plan(frame, strategies, indicators))
    for name in frame.columns:
        observed = frame[name].notna().to_numpy()
        assert out[name].to_numpy()[observed].tolist() == frame[name].to_numpy()[observed].tolist()


@SETTINGS
@given(frames())
def test_rows_columns_and_their_order_are_kept(
    case: tuple[pd.DataFrame, dict[str, str], bool],
) -> None:
    frame, strategies, indicators = case
    plan = _plan(frame, strategies, indicators)
    out = _impute(frame, plan)
    flagged = [f.name for f in plan.features if f.indicator]
    assert list(out.columns) == list(frame.columns) + [f"missingindicator_{n}" for n in flagged]
    assert len(out) == len(frame)
    assert out.index.equals(frame.index)
    for name in flagged:
        assert out[f"missingindicator_{name}"].tolist() == frame[name].isna().tolist()


@SETTINGS
@given(frames())
def test_fitting_twice_gives_the_same_result(
    case: tuple[pd.DataFrame, dict[str, str], bool],
) -> None:
    frame, strategies, indicators = case
    plan = _plan(frame, strategies, indicators)
    assert plan == _plan(frame, strategies, indicators)
    pd.testing.assert_frame_equal(_impute(frame, plan), _impute(frame, plan))


@SETTINGS
@given(frames(), st.data())
def test_a_serving_batch_is_filled_with_training_statistics(
    case: tuple[pd.DataFrame, dict[str, str], bool], data: st.DataObject
) -> None:
    frame, strategies, indicators = case
    plan = _plan(frame, strategies, indicators)
    imputer = build_imputer(plan).fit(frame)
    rows = data.draw(st.lists(st.integers(0, len(frame) - 1), min_size=1, max_size=20))
    batch = frame.iloc[rows].reset_index(drop=True)
    batch = batch.mask(np.random.default_rng(len(rows)).random(batch.shape) < 0.5)
    out = imputer.transform(batch)
    assert not out.isna().any().any()
    for feature in plan.used():
        if feature.statistic is not None:
            gaps = batch[feature.name].isna().to_numpy()
            filled = out[feature.name].to_numpy()[gaps].tolist()
            expected: object = feature.statistic
            if isinstance(expected, float):  # a mean summed in another order: last bits differ
                expected = pytest.approx(expected, rel=1e-12, abs=1e-9)
            assert all(value == expected for value in filled), feature.name
