"""Per-feature quality: the score, its parts and the reasons a person reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.config import QualityConfig
from mlops.data.quality import FeatureQuality, assess, assess_column, failing, percent

NONE = np.array([], dtype="int64")


def quality(
    column: pd.Series,
    *,
    invalid: np.ndarray = NONE,
    unseen: int = 0,
    sentinels: tuple[float | str, ...] = (),
    max_categories: int = 100,
    threshold: float = 0.95,
) -> FeatureQuality:
    return assess_column(
        column,
        invalid_rows=invalid,
        unseen_rows=unseen,
        sentinels=sentinels,
        max_categories=max_categories,
        threshold=threshold,
    )


def test_a_complete_column_scores_one() -> None:
    result = quality(pd.Series(np.arange(100.0)))
    assert (result.score, result.passed, result.reasons) == (1.0, True, ())


def test_missing_values_lower_the_score() -> None:
    column = pd.Series([1.0, np.nan] * 50 + [2.0] * 100)  # 50 of 200 missing
    result = quality(column)
    assert (result.missing_rate, result.score, result.passed) == (0.25, 0.75, False)
    assert result.reasons == ("25.0% missing",)


def test_sentinels_count_as_unusable() -> None:
    column = pd.Series([0.0] * 95 + [99999.0] * 5 + [1.0] * 100)
    result = quality(column, sentinels=(99999.0,))
    assert (result.sentinel_rate, result.score) == (0.025, 0.975)
    assert "2.5% sentinel 99999" in result.reasons


def test_text_sentinels_apply_to_text_columns_only() -> None:
    column = pd.Series(["unknown"] * 10 + ["a", "b"] * 45, dtype="str")
    assert quality(column, sentinels=("unknown",)).sentinel_rate == 0.1
    assert quality(column, sentinels=(1.0,)).sentinel_rate == 0.0


def test_out_of_contract_rows_are_unusable_and_unseen_is_reported() -> None:
    column = pd.Series(["a", "b"] * 50, dtype="str")
    result = quality(column, invalid=np.array([0, 2, 4]), unseen=3)
    assert (result.invalid_rate, result.unseen_rate, result.score) == (0.03, 0.03, 0.97)
    assert result.reasons == ("3.0% out of contract", "3.0% unseen categories")


def test_a_missing_row_is_not_counted_twice() -> None:
    column = pd.Series([np.nan, 1.0, 2.0, 3.0] * 25)
    result = quality(column, invalid=np.array([0]), sentinels=(3.0,))
    assert result.score == pytest.approx(0.5)  # 25 missing + 25 sentinel, row 0 already missing
    assert result.invalid_rate == 0.0


def test_a_constant_column_scores_zero() -> None:
    result = quality(pd.Series(["same"] * 100, dtype="str"))
    assert (result.constant, result.score, result.passed) == (True, 0.0, False)
    assert result.reasons[0] == "constant: one distinct value ('same')"


def test_a_small_batch_is_not_called_constant() -> None:
    assert quality(pd.Series(["same"] * 10, dtype="str")).constant is False


def test_exploding_cardinality_scores_zero_for_text_only() -> None:
    text = pd.Series([f"v{i}" for i in range(150)], dtype="str")
    result = quality(text, max_categories=100)
    assert (result.exploding_cardinality, result.score) == (True, 0.0)
    assert result.reasons[0] == "exploding cardinality: 150 distinct values > 100"
    assert quality(pd.Series(np.arange(150.0)), max_categories=100).exploding_cardinality is False


def test_assess_names_each_column_and_lists_the_failing(adult_sample: pd.DataFrame) -> None:
    config = QualityConfig(sentinels={"capital_gain": (99999.0,)}, max_categories=100)
    columns = ["age", "workclass", "occupation", "capital_gain"]
    result = assess(
        adult_sample, columns, out_of_contract={}, unseen={}, config=config, threshold=0.95
    )
    assert list(result) == columns
    assert failing(result) == ["workclass", "occupation"]  # ~5.6% missing in the demo data
    assert result["capital_gain"].sentinel_rate > 0
    assert result["workclass"].to_dict()["reasons"][0].endswith("missing")


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=80),
    threshold=st.floats(0, 1),
)
def test_score_is_a_share_bounded_by_presence(values: list[float | None], threshold: float) -> None:
    column = pd.Series(values, dtype="float64")
    before = column.copy()
    result = quality(column, sentinels=(0.0,), threshold=threshold)
    assert 0.0 <= result.score <= 1.0 - result.missing_rate + 1e-9
    assert result.passed is (result.score >= threshold)
    pd.testing.assert_series_equal(column, before)


@pytest.mark.parametrize(
    ("rate", "text"), [(0.0, "0.0%"), (0.0004, "<0.1%"), (0.056386, "5.6%"), (1.0, "100.0%")]
)
def test_percent(rate: float, text: str) -> None:
    assert percent(rate) == text
