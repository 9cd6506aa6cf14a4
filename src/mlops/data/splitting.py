"""A seeded train/test split, balanced the way the task says (tasks.task), or a split in
time (the latest rows as the test split), and the training rows the model is fitted on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops.data.identifiers import read_times
from mlops.errors import UsageError, clip
from mlops.tasks.task import get_task

if TYPE_CHECKING:
    from mlops.config import Params

# A multiclass task needs this many classes (fewer left after rare ones go: refused).
_MIN_CLASSES = 3


def split(
    frame: pd.DataFrame,
    target: str,
    test_size: float,
    seed: int,
    task: str,
    *,
    groups: str | None = None,
    time: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping ``target``'s distribution in both parts: the class balance
    (classification) or the quantile bins of the value (regression); with ``groups``,
    each group's rows on one side; with ``time``, the latest rows as the test split
    (``time_split``).

    A class too rare for both parts (seen once) is a UsageError naming it: a split
    that left it out of training would score the model on a class it never saw.
    """
    if time is not None:
        train, test = time_split(frame, target, test_size, task, time=time)
    else:
        what = f"train/test split of data.target {target!r}"
        train, test = get_task(task).split(frame, target, test_size, seed, what, groups=groups)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def as_times(values: pd.Series, what: str) -> pd.Series:
    """``values`` as UTC times: a date/time column, or text that reads as dates or times;
    a UsageError for numbers (a year or an epoch count is ambiguous) or for a value
    that is missing or reads as no time."""
    if pd.api.types.is_datetime64_any_dtype(values):
        times = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise UsageError(
            f"{what}: {values.name!r} holds numbers, not dates or times; expected a date or "
            "time column (2024-01-31, 2024-01-31 12:00); write a year as a date"
        )
    else:
        times = read_times(values)
    missing, unread = values.isna(), times.isna() & values.notna()
    if missing.any() or unread.any():
        shown = ", ".join(repr(v) for v in values[unread].drop_duplicates().head(3))
        raise UsageError(
            f"{what}: {values.name!r} has {int(missing.sum())} missing value(s) and "
            f"{int(unread.sum())} that read as no date or time"
            + (f" (e.g. {shown})" if shown else "")
            + "; every row needs one to be ordered"
        )
    return times


def time_split(
    frame: pd.DataFrame,
    target: str,
    test_size: float,
    task: str,
    *,
    time: str,
    share: str = "split.test_size",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier rows, the latest ``test_size`` share by ``time``), each in the frame's
    order. Rows at the same time stay on one side: the cut falls before or after the
    time at the share's edge, whichever lands nearer the share. For a classification
    task every class must be on both sides: the model must learn it, and be scored on it
    (``share``: the params key that sets ``test_size``, for the message)."""
    times = as_times(frame[time], "params.yaml split.time")
    ranked = np.sort(times.to_numpy())
    wanted = len(ranked) * test_size
    edge = ranked[min(len(ranked) - 1, len(ranked) - round(wanted))]
    cuts = [later for later in (times >= edge, times > edge) if 0 < later.sum() < len(frame)]
    if not cuts:
        raise UsageError(
            f"params.yaml split.time: every row of {time!r} holds the same time; "
            "a split in time needs at least two"
        )
    later = min(cuts, key=lambda cut: abs(int(cut.sum()) - wanted)).to_numpy()
    earlier, latest = frame[~later], frame[later]
    if get_task(task).is_classification:
        tested = set(latest[target])
        missing = sorted(set(earlier[target]) ^ tested, key=str)
        if missing:
            found = ", ".join(
                f"{c!r} only in {'the test split' if c in tested else 'training'}" for c in missing
            )
            raise UsageError(
                f"params.yaml split.time: class(es) {clip(found, 200)} once the latest "
                f"{test_size:g} of rows by {time!r} are held out; raise {share} so both "
                "periods hold every class, or set split.time: null"
            )
    return earlier, latest


def min_class_rows(params: Params) -> int:
    """The fewest rows of a class that leave a row of it in the test split and one in
    each cross-validation fold (tune.cv_folds, impute.auto.cv_folds) of the training split."""
    folds = max(params.tune.cv_folds, params.impute.auto.cv_folds)
    return max(2, math.ceil(folds / (1.0 - params.split.test_size)))


def rare_classes(counts: Mapping[str, int], min_rows: int, target: str) -> dict[str, int]:
    """The classes of a multiclass ``target`` (``counts``: label -> rows) seen fewer than
    ``min_rows`` times, too few to split and cross-validate, with their rows.
    UsageError when fewer than three classes would be left without them."""
    rare = {str(label): int(rows) for label, rows in counts.items() if rows < min_rows}
    left = len(counts) - len(rare)
    if rare and left < _MIN_CLASSES:
        raise UsageError(
            f"data.target {target!r}: without the classes seen fewer than {min_rows} times "
            f"({describe_rare(rare)}), {left} remain and a multiclass task needs "
            f"{_MIN_CLASSES}: gather more rows of them, or relabel them"
        )
    return rare


def without_rare(
    frame: pd.DataFrame, target: str, min_rows: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A multiclass ``frame`` without the rows of its ``rare_classes`` (the model never
    predicts them), and those classes with their rows."""
    counts = {str(label): int(rows) for label, rows in frame[target].value_counts().items()}
    rare = rare_classes(counts, min_rows, target)
    return frame[~frame[target].isin(list(rare))].reset_index(drop=True), rare


def describe_rare(rare: Mapping[str, int]) -> str:
    """The ``rare`` classes as "'9' (5 rows), '3' (4 rows)"."""
    return clip(", ".join(f"{label!r} ({rows_of(rows)})" for label, rows in rare.items()), 200)


def rows_of(count: int) -> str:
    """ "1 row", "3 rows", "15,706 rows"."""
    return f"{count:,} row{'' if count == 1 else 's'}"


def fitting_rows(
    train: pd.DataFrame, target: str, max_rows: int | None, seed: int, task: str
) -> pd.DataFrame:
    """The rows of the training split the model is fitted on: all of them, or a seeded
    sample of ``max_rows`` balanced as the split is (params.yaml train.max_rows). The
    train and evaluate stages both take these."""
    return get_task(task).sample(train, target, max_rows, seed).reset_index(drop=True)
