"""Numerical stability of the model's answers (ML Test Score, Monitoring 6: "the model
has not experienced a dramatic or slow-leak regression in ... numerical stability").

A model that answers NaN or infinity, probabilities outside [0, 1] or that do not
sum to 1, a value far outside anything it answered on held-out rows, or a class it
does not know, is broken whatever its inputs look like: the response is a rollback,
not a retraining. The checks read only the output columns and their reference
profiles, so they are the same for every task: numeric columns are checked for
finiteness and a plausible range, probability columns (``probability`` or
``probability_<class>``, ``Task.columns``) for [0, 1] and, when a row has one per
class, for summing to 1; categorical columns for values the reference never saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlops.monitoring.reference import category_keys
from mlops.tasks.task import PROBABILITY

# A value is implausible when it lies further outside the reference's [min, max] than
# this share of that range: a regression model may extrapolate a little, not by far.
RANGE_MARGIN = 0.5
SUM_TOLERANCE = 1e-6


def stability(
    outputs: pd.DataFrame,
    reference: Mapping[str, Any],
    margin: float = RANGE_MARGIN,
) -> dict[str, Any]:
    """Per output column, the rows failing each check; ``stable`` False on any failure."""
    profiles: Mapping[str, Any] = reference["prediction"]["columns"]
    columns = {
        str(name): _column(outputs[name], profiles.get(str(name)), str(name), margin)
        for name in outputs.columns
    }
    probabilities = [n for n in outputs.columns if is_probability(str(n))]
    found: dict[str, Any] = {"columns": columns}
    if len(probabilities) > 1:
        sums = outputs[probabilities].apply(pd.to_numeric, errors="coerce").sum(axis=1)
        found["not_summing_to_1"] = int((~np.isclose(sums, 1.0, atol=SUM_TOLERANCE)).sum())
    failures = sum(sum(c.values()) for c in columns.values())
    found["stable"] = failures + found.get("not_summing_to_1", 0) == 0
    found["rows"] = len(outputs)
    return found


def is_probability(name: str) -> bool:
    return name == PROBABILITY or name.startswith(f"{PROBABILITY}_")


def _column(
    values: pd.Series, profile: Mapping[str, Any] | None, name: str, margin: float
) -> dict[str, int]:
    if profile is None or profile["kind"] == "categorical":
        # A class is unknown when the reference lists every class it saw (no "other").
        known = set(profile["frequencies"]) if profile and not profile.get("other") else set()
        keys = category_keys(values)
        unknown = int((~keys.isin(known)).sum()) if known else 0
        return {"missing": int(values.isna().sum()), "unknown_class": unknown}
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = numbers[np.isfinite(numbers)]
    counts = {
        "nan": int(np.isnan(numbers).sum()),
        "infinite": int(np.isinf(numbers).sum()),
    }
    if is_probability(name):
        return counts | {"outside_0_1": int(((finite < 0) | (finite > 1)).sum())}
    if "min" not in profile:
        return counts
    low, high = float(profile["min"]), float(profile["max"])
    slack = margin * (high - low)
    return counts | {"out_of_range": int(((finite < low - slack) | (finite > high + slack)).sum())}
