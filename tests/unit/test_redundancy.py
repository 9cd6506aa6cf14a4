"""Redundant features: each pair's association by kind, and which of a pair goes."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mlops.data.redundancy import Pair, associations, redundant

ROWS = 600


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=ROWS)
    level = rng.choice(["low", "mid", "high"], ROWS)
    rank = pd.Series(level).map({"low": 1.0, "mid": 2.0, "high": 3.0})
    return pd.DataFrame(
        {
            "x": x,
            "x_cubed": x**3,  # monotone in x: Spearman 1, Pearson well below
            "noise": rng.normal(size=ROWS),
            "level": pd.Series(level, dtype="str"),
            "rank": rank,  # the level as a number: eta 1
            "label": pd.Series(level, dtype="str").map({"low": "L", "mid": "M", "high": "H"}),
            "coin": pd.Series(rng.choice(["h", "t"], ROWS), dtype="str"),
        }
    )


def test_each_kind_of_pair_gets_its_own_measure(frame: pd.DataFrame) -> None:
    pairs = {(p.first, p.second): p for p in associations(frame, list(frame.columns))}
    assert pairs["x", "x_cubed"] == Pair("x", "x_cubed", "spearman", 1.0)
    assert pairs["level", "rank"] == Pair("level", "rank", "correlation_ratio", 1.0)
    assert pairs["level", "label"] == Pair("level", "label", "cramers_v", 1.0)
    assert pairs["x", "noise"].value < 0.15
    assert pairs["level", "coin"].value < 0.15
    assert pairs["rank", "coin"].measure == "correlation_ratio"
    assert pairs["rank", "coin"].value < 0.15


def test_pairs_come_strongest_first(frame: pd.DataFrame) -> None:
    values = [p.value for p in associations(frame, list(frame.columns))]
    assert values == sorted(values, reverse=True)


def test_missing_values_and_constants_do_not_break_it(frame: pd.DataFrame) -> None:
    holes = frame.assign(
        x=frame["x"].mask(frame.index % 5 == 0), same=1.0, flat=pd.Series(["a"] * ROWS)
    )
    pairs = {(p.first, p.second): p for p in associations(holes, ["x", "x_cubed", "same", "flat"])}
    assert pairs["x", "x_cubed"].value == 1.0
    assert pairs["x", "same"].value == 0.0
    assert pairs["same", "flat"].value == 0.0
    assert pairs["x", "flat"].value == 0.0


def test_number_pairs_are_spearman_on_the_rows_both_hold() -> None:
    """The rank-correlation matrix gives each pair of numbers what scipy's Spearman gives
    on the rows where both have a value (missing values differ per column)."""
    rng = np.random.default_rng(4)
    base = rng.normal(size=(300, 6))
    data = pd.DataFrame(base @ rng.normal(size=(6, 6)), columns=[f"n{i}" for i in range(6)])
    data = data.mask(rng.random(data.shape) < 0.1).assign(ties=rng.integers(0, 3, 300) * 1.0)
    names = list(data.columns)
    found = {(p.first, p.second): p for p in associations(data, names)}
    for a, b in itertools.combinations(names, 2):
        both = data[[a, b]].dropna()
        want = abs(spearmanr(both[a], both[b]).statistic)
        assert found[a, b] == Pair(a, b, "spearman", round(want, 6))


def test_a_category_with_many_values_is_not_associated_with_noise_by_chance() -> None:
    """Plain eta of an unrelated 1,000-value category over 4,000 rows is about 0.5 and
    plain Cramér's V with a 300-value one about 0.5 too; corrected, both near 0, while
    a category that determines the other column still scores 1."""
    rng = np.random.default_rng(1)
    rows = 4000
    city = rng.integers(0, 1000, rows).astype(str)
    frame = pd.DataFrame(
        {
            "city": city,
            "noise": rng.normal(size=rows),
            "shop": rng.integers(0, 300, rows).astype(str),
            "code": pd.Series(city).map(lambda c: f"c{c}"),  # city by another name
            "size": pd.Series(city).astype(float) * 2.0,
        }
    )
    values = {frozenset((p.first, p.second)): p.value for p in associations(frame, list(frame))}
    assert values[frozenset(("city", "noise"))] < 0.1
    assert values[frozenset(("city", "shop"))] < 0.1
    assert values[frozenset(("city", "code"))] == pytest.approx(1.0)
    assert values[frozenset(("city", "size"))] == pytest.approx(1.0)
    groups = pd.Series(frame["noise"]).groupby(city)
    plain = np.sqrt((groups.count() * (groups.mean() - frame["noise"].mean()) ** 2).sum()
                    / ((frame["noise"] - frame["noise"].mean()) ** 2).sum())  # fmt: skip
    assert plain > 0.45  # what the correction removes


def test_the_less_important_of_a_pair_goes_and_one_of_three_copies_stays() -> None:
    pairs = [
        Pair("a", "b", "spearman", 0.99),
        Pair("a", "c", "spearman", 0.98),
        Pair("b", "c", "spearman", 0.97),
        Pair("c", "d", "spearman", 0.5),
    ]
    importance = {"a": 0.01, "b": 0.05, "c": 0.03, "d": 0.2}
    gone = redundant(pairs, 0.9, importance, ["a", "b", "c", "d"])
    assert list(gone) == ["a", "c"]  # b is the most important copy of the three
    assert gone["c"] == Pair("b", "c", "spearman", 0.97)
    assert redundant(pairs, 0.995, importance, ["a", "b", "c", "d"]) == {}


def test_a_tie_keeps_the_earlier_feature_and_dropped_features_are_skipped() -> None:
    pairs = [Pair("a", "b", "cramers_v", 1.0), Pair("b", "c", "cramers_v", 0.95)]
    assert list(redundant(pairs, 0.9, {}, ["a", "b", "c"])) == ["b"]
    # a is already out (indistinguishable from zero): the a-b pair no longer counts.
    assert list(redundant(pairs, 0.9, {"b": 1.0}, ["b", "c"])) == ["c"]
