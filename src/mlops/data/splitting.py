"""A seeded train/test split, balanced the way the task says (tasks.task), and the
training rows the model is fitted on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping ``target``'s distribution in both parts: the class balance
    (classification) or the quantile bins of the value (regression); with ``groups``,
    each group's rows on one side.

    A class too rare for both parts (seen once) is a UsageError naming it: a split
    that left it out of training would score the model on a class it never saw.
    """
    train, test = get_task(task).split(
        frame, target, test_size, seed, f"train/test split of data.target {target!r}", groups=groups
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


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
    """ "1 row", "3 rows"."""
    return f"{count} row{'' if count == 1 else 's'}"


def fitting_rows(
    train: pd.DataFrame, target: str, max_rows: int | None, seed: int, task: str
) -> pd.DataFrame:
    """The rows of the training split the model is fitted on: all of them, or a seeded
    sample of ``max_rows`` balanced as the split is (params.yaml train.max_rows). The
    train and evaluate stages both take these."""
    return get_task(task).sample(train, target, max_rows, seed).reset_index(drop=True)
