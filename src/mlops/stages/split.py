"""Stage ``split``: data/raw -> data/split/train.parquet and test.parquet."""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.io import files

SUMMARY = (
    "seeded train/test split into data/split/, stratified by class (regression: by quantile "
    "bins), or the latest rows as the test split (split.time)"
)


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    raw = files.read_parquet(PATHS.raw, "raw data set (run `dvc repro ingest`)")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.data.ingestion import group_column, normalise_name, time_column
    from mlops.data.splitting import (
        as_times,
        describe_rare,
        min_class_rows,
        rows_of,
        split,
        without_rare,
    )

    data = params.data
    target = normalise_name(data.target)
    groups = group_column(params, list(raw.columns))
    time = time_column(params, list(raw.columns))
    if data.task == "multiclass" and params.split.rare_classes == "drop":
        raw, rare = without_rare(raw, target, min_class_rows(params))
        if rare:
            print(
                f"mlops split: left out {rows_of(sum(rare.values()))} of the classes seen "
                f"fewer than {min_class_rows(params)} times, too few to split and "
                f"cross-validate: {describe_rare(rare)}; the model never predicts them "
                "(params.yaml split.rare_classes: drop)"
            )
    train, test = split(
        raw, target, params.split.test_size, params.seed, data.task, groups=groups, time=time
    )
    if time is not None:
        first = as_times(test[time], "params.yaml split.time").min()
        print(
            f"mlops split: the test split is the latest {rows_of(len(test))} by {time} "
            f"(from {first:%Y-%m-%d}), training the {rows_of(len(train))} before them "
            "(params.yaml split.time)"
        )
    files.write_parquet(PATHS.train, train)
    files.write_parquet(PATHS.test, test)
