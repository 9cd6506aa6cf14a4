"""Redundant features: pairs so strongly associated that one says what the other says.

A model gains nothing from the second of two features that carry the same
information, and pays for it in collection, latency and a wider attack surface
(ML Test Score, Data 2). Each pair is measured with the association its kinds
allow, all on the scale 0 (unrelated) to 1 (one determines the other):

- two numbers: |Spearman's rho| (any monotone relation, robust to outliers);
- two categories: Cramér's V of their contingency table (scipy's chi-squared), with
  Bergsma's correction for the V that many categories reach by chance;
- a number and a category: the correlation ratio, the share of the number's
  spread that the category explains beyond chance (sqrt of epsilon squared).

Uncorrected, a category with many values looks associated with everything: a random
one with 1,000 values over 4,000 rows has eta about 0.5.

Missing values are left out pair by pair; a constant column is associated with
nothing (there is no information to duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency
from scipy.stats.contingency import crosstab


@dataclass(frozen=True)
class Pair:
    first: str
    second: str
    measure: str  # spearman | cramers_v | correlation_ratio
    value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def associations(frame: pd.DataFrame, features: Sequence[str]) -> list[Pair]:
    """Every pair of ``features`` with its association, strongest first.

    The pairs of two numbers come from one rank-correlation matrix (pandas, in C, each
    pair on the rows where both have a value): a data set of 300 numeric features has
    44,850 pairs, which one at a time took minutes.
    """
    numbers = [f for f in features if pd.api.types.is_numeric_dtype(frame[f])]
    rho = frame[numbers].corr(method="spearman").abs().fillna(0.0).to_numpy()
    index = {name: i for i, name in enumerate(numbers)}
    pairs = [
        Pair(a, b, "spearman", round(float(rho[index[a], index[b]]), 6))
        if a in index and b in index
        else _pair(frame[a], frame[b])
        for a, b in combinations(features, 2)
    ]
    return sorted(pairs, key=lambda pair: -pair.value)


def redundant(
    pairs: Sequence[Pair], threshold: float, importance: Mapping[str, float], kept: Sequence[str]
) -> dict[str, Pair]:
    """Which of ``kept`` to leave out, and the pair that made each redundant.

    Strongest pair first, the less important feature of a pair above ``threshold``
    goes (a tie: the later one in ``kept``, the contract's order); a pair one of
    whose features already went is no longer redundant, so of three copies of the
    same information exactly one stays.
    """
    order = {name: i for i, name in enumerate(kept)}
    gone: dict[str, Pair] = {}
    for pair in sorted(pairs, key=lambda pair: -pair.value):
        if pair.value <= threshold:
            break
        if {pair.first, pair.second} & gone.keys() or not {pair.first, pair.second} <= set(order):
            continue
        # max() keeps the first of equals: the more important, then the earlier one.
        ranked = sorted((pair.first, pair.second), key=order.__getitem__)
        keep = max(ranked, key=lambda name: importance.get(name, 0.0))
        gone[pair.second if keep == pair.first else pair.first] = pair
    return gone


def _pair(a: pd.Series, b: pd.Series) -> Pair:
    """A pair with a category in it (two numbers: ``associations``' matrix)."""
    both = pd.concat([a, b], axis=1).dropna()
    x, y = both.iloc[:, 0], both.iloc[:, 1]
    numeric = (pd.api.types.is_numeric_dtype(x), pd.api.types.is_numeric_dtype(y))
    if not any(numeric):
        measure, value = "cramers_v", _cramers_v(x, y)
    else:
        number, category = (x, y) if numeric[0] else (y, x)
        measure, value = "correlation_ratio", _correlation_ratio(number, category)
    return Pair(str(a.name), str(b.name), measure, round(value, 6))


def _cramers_v(x: pd.Series, y: pd.Series) -> float:
    """Cramér's V with Bergsma's bias correction: the plain V of two unrelated
    categories with many values is far from 0 by chance (about sqrt(k / n))."""
    table = crosstab(x.astype(str).to_numpy(), y.astype(str).to_numpy()).count
    rows, columns = table.shape
    n = float(table.sum())
    if min(rows, columns) < 2 or n < 2:
        return 0.0
    phi2 = chi2_contingency(table, correction=False)[0] / n
    phi2 = max(0.0, phi2 - (rows - 1) * (columns - 1) / (n - 1))
    rows_c = rows - (rows - 1) ** 2 / (n - 1)
    columns_c = columns - (columns - 1) ** 2 / (n - 1)
    scale = min(rows_c, columns_c) - 1
    return float(min(1.0, np.sqrt(phi2 / scale))) if scale > 0 else 0.0


def _correlation_ratio(number: pd.Series, category: pd.Series) -> float:
    """The correlation ratio from epsilon squared, the share of the number's variance the
    category explains beyond what as many groups explain by chance ((k - 1) / (n - 1) of
    it: eta of an unrelated category with 1,000 values over 4,000 rows is about 0.5)."""
    values = number.to_numpy(dtype=float)
    total = float(np.square(values - values.mean()).sum())
    groups = pd.Series(values).groupby(category.astype(str).to_numpy())
    k, n = groups.ngroups, len(values)
    if total == 0.0 or n <= k:
        return 0.0  # no spread, or a group per row: nothing left to tell chance apart
    between = float((groups.count() * np.square(groups.mean() - values.mean())).sum())
    within = total - between
    epsilon2 = (between - (k - 1) * within / (n - k)) / total
    return float(np.sqrt(min(1.0, max(0.0, epsilon2))))
