"""The fire drill's plan: the scenarios, in order, what each injects into the stream of
production batches, and the response a correct policy gives to it.

Pure: frames, arrays and the reference profile in, frames and arrays out; the runner
(``mlops.drill.runner``) does the I/O. The columns a scenario changes are chosen from
the reference profile by kind and from the evaluation's importance, never by name, so
the drill runs on any binary project's stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.data.ingestion import with_column
from mlops.errors import UsageError

NONE = "none"
CLEAN = "clean"
# Each injected scenario and the one action that answers it (the others may only be "none").
EXPECTED: dict[str, str] = {
    "covariate_shift": "retrain",
    "broken_null": "alert",
    "broken_units": "alert",
    "bad_model": "rollback",
    "concept_drift": "retrain",
}
SCENARIOS: tuple[str, ...] = tuple(EXPECTED)
# Scenarios whose batch goes through the HTTP server: an all-null column in a batch file
# is refused whole by predict's contract check (a table-level check a request of a few
# rows is spared), so the broken feature reaches the model, imputed, only as live traffic.
SERVED = frozenset({"broken_null"})
UNITS_FACTOR = 1000.0
# Sampling weight of a row: its rank in the shifted feature to this power (8: the
# window's median row sits near the population's 92nd percentile), strong enough that
# half the features drift in a window of 300 rows (measured on the demo: 5 of 5 seeds).
SHIFT_STRENGTH = 8.0
# The concept drift's subgroup: rows at or above this quantile of the shifted feature.
SUBGROUP_QUANTILE = 0.5


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: str
    batches: int
    change: str  # one line: what is injected


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in EXPECTED]
    if unknown or not names:
        raise UsageError(
            f"unknown drill scenario(s) {', '.join(unknown) or '(none given)'}; "
            f"expected some of {', '.join(SCENARIOS)}"
        )


def plan(names: Sequence[str], columns: Columns, clean: int, per_scenario: int) -> list[Scenario]:
    """Clean batches first (the false-alarm baseline), then each named scenario in turn."""
    check_names(names)
    changes = {
        "covariate_shift": f"rows sampled by rank of {columns.shifted} to the power "
        f"{SHIFT_STRENGTH:g} (an older population, for the demo)",
        "broken_null": f"{columns.nulled} null in every row (broken upstream)",
        "broken_units": f"{columns.rescaled} multiplied by {UNITS_FACTOR:g} (units changed)",
        "bad_model": "a model trained on inverted labels forced into production "
        "(gate report edited, canary skipped)",
        "concept_drift": f"labels flipped for part of the rows with {columns.shifted} at or "
        f"above its median (sized between the decay limit and the floor)",
    }
    steps = [Scenario(CLEAN, NONE, clean, "held-out rows as they come")]
    return steps + [
        Scenario(n, EXPECTED[n], per_scenario, changes[n]) for n in SCENARIOS if n in names
    ]


@dataclass(frozen=True)
class Columns:
    """The features the scenarios change (all numeric, none constant)."""

    shifted: str  # covariate shift's sampling and concept drift's subgroup: the first
    nulled: str  # the most important numeric feature (evaluation's importance)
    rescaled: str  # the first other numeric feature, one without an upper bound if any


def choose_columns(
    features: Mapping[str, Mapping[str, Any]], importance: Sequence[str], unbounded: Set[str]
) -> Columns:
    """From the reference profile (``features``), the features by falling importance, and
    the features the contract does not bound above (x1000 there is not refused at the
    door, so the monitor must catch it)."""
    numeric = [
        name
        for name, profile in features.items()
        if profile.get("kind") == "numeric" and float(profile.get("std") or 0.0) > 0
    ]
    if len(numeric) < 2:
        raise UsageError(
            "the drill needs two numeric features that vary in the reference profile "
            f"(models/reference.json has {len(numeric)})"
        )
    ranked = [name for name in importance if name in numeric]
    nulled = ranked[0] if ranked else numeric[-1]
    others = [n for n in numeric if n != nulled]
    return Columns(numeric[0], nulled, next((n for n in others if n in unbounded), others[0]))


class Stream:
    """The held-out rows, shuffled once, dealt out as batches without reuse."""

    def __init__(self, frame: pd.DataFrame, seed: int) -> None:
        self._frame = frame.reset_index(drop=True)
        self._rng = np.random.default_rng(seed)
        self._left = self._rng.permutation(len(frame))

    def take(self, rows: int) -> pd.DataFrame:
        return self._pick(np.arange(self._need(rows)))

    def take_shifted(self, rows: int, column: str) -> pd.DataFrame:
        """``rows`` drawn with weights rising steeply with ``column``'s rank."""
        self._need(rows)
        values = self._frame[column].iloc[self._left]
        weights = values.rank(pct=True).fillna(0.0).to_numpy() ** SHIFT_STRENGTH
        chosen = self._rng.choice(len(self._left), rows, replace=False, p=weights / weights.sum())
        return self._pick(np.sort(chosen))

    def _need(self, rows: int) -> int:
        if rows > len(self._left):
            raise UsageError(
                f"the stream has {len(self._left)} rows left, the next batch needs {rows}: "
                "use fewer or smaller batches (--batch-rows)"
            )
        return rows

    def _pick(self, positions: np.ndarray) -> pd.DataFrame:
        taken = self._left[positions]
        self._left = np.delete(self._left, positions)
        picked: pd.DataFrame = self._frame.iloc[taken].reset_index(drop=True)
        return picked


def break_inputs(batch: pd.DataFrame, scenario: str, columns: Columns) -> pd.DataFrame:
    """The batch as a broken upstream sends it (unchanged for other scenarios)."""
    if scenario == "broken_null":
        return with_column(batch, columns.nulled, np.nan)
    if scenario == "broken_units":
        return with_column(batch, columns.rescaled, batch[columns.rescaled] * UNITS_FACTOR)
    return batch


def flip(actual: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Binary labels (0/1) with the ``chosen`` rows' labels inverted."""
    return np.where(chosen, 1 - actual, actual)


def flip_order(subgroup: np.ndarray, seed: int) -> np.ndarray:
    """The subgroup's rows in a seeded random order: the first k are flipped."""
    return np.random.default_rng(seed).permutation(np.flatnonzero(subgroup))


def concept_target(
    test_value: float, tolerance: float, floor: float | None, greater_is_better: bool
) -> float:
    """The realised metric the concept drift aims at: halfway between the value the
    monitor calls a decay and the floor below which respond rolls back (no floor: one
    tolerance past the decay)."""
    sign = 1.0 if greater_is_better else -1.0
    decayed = test_value - sign * tolerance
    if floor is None:
        return decayed - sign * tolerance
    if sign * (decayed - floor) <= 0:
        raise UsageError(
            f"respond.performance_floor {floor:g} is no worse than the decay limit "
            f"{decayed:g} (test value {test_value:g}, tolerance {tolerance:g}): a concept "
            "drift cannot decay without going below the floor"
        )
    return (decayed + floor) / 2


def flips_for(score: Callable[[int], float], target: float, most: int) -> int:
    """How many of the ordered subgroup rows to flip for a realised metric nearest
    ``target`` (``score(k)``: the metric with the first k flipped), on a grid of 20."""
    grid = sorted({round(most * step / 20) for step in range(1, 21)})
    return min(grid, key=lambda k: abs(score(k) - target))
