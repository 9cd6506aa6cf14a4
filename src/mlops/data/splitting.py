"""A seeded train/test split, balanced the way the task says (tasks.task), and the
training rows the model is fitted on."""

from __future__ import annotations

import pandas as pd

from mlops.tasks.task import get_task


def split(
    frame: pd.DataFrame, target: str, test_size: float, seed: int, task: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping ``target``'s distribution in both parts: the class balance
    (classification) or the quantile bins of the value (regression).

    A class too rare for both parts (seen once) is a UsageError naming it: a split
    that left it out of training would score the model on a class it never saw.
    """
    train, test = get_task(task).split(
        frame, target, test_size, seed, f"train/test split of data.target {target!r}"
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fitting_rows(
    train: pd.DataFrame, target: str, max_rows: int | None, seed: int, task: str
) -> pd.DataFrame:
    """The rows of the training split the model is fitted on: all of them, or a seeded
    sample of ``max_rows`` balanced as the split is (params.yaml train.max_rows). The
    train and evaluate stages both take these."""
    return get_task(task).sample(train, target, max_rows, seed).reset_index(drop=True)
