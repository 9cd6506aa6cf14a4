"""A stratified, seeded train/test split."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from mlops.errors import CheckFailed


def split(
    frame: pd.DataFrame, target: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping the class balance of ``target`` in both parts."""
    counts = frame[target].value_counts()
    n_test = round(len(frame) * test_size)
    if counts.min() < 2 or n_test < counts.size or len(frame) - n_test < counts.size:
        raise CheckFailed(
            f"too few rows to split ({len(frame)} rows, class counts {counts.to_dict()}, "
            f"test_size {test_size})"
        )
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[target]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
