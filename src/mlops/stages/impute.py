"""Stage ``impute``: the per-feature imputation plan -> models/imputation.json."""

from __future__ import annotations

import argparse

from mlops import io
from mlops.config import PATHS
from mlops.imputation import plan_imputation
from mlops.ingestion import normalise_name


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    train = io.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    target = normalise_name(params.data.target)
    features = [c for c in train.columns if c != target]
    plan = plan_imputation(train, target, features, params.impute)
    io.write_json(PATHS.imputation, plan.to_dict())
