"""Stage ``split``: data/raw -> data/split/train.parquet and test.parquet."""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.io import files

SUMMARY = (
    "seeded train/test split into data/split/, stratified by class (regression: by quantile bins)"
)


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    raw = files.read_parquet(PATHS.raw, "raw data set (run `dvc repro ingest`)")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.data.ingestion import normalise_name
    from mlops.data.splitting import split

    data = params.data
    train, test = split(
        raw, normalise_name(data.target), params.split.test_size, params.seed, data.task
    )
    files.write_parquet(PATHS.train, train)
    files.write_parquet(PATHS.test, test)
