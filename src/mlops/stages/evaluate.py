"""Stage ``evaluate``: score the model on the held-out split -> metrics and plot data."""

from __future__ import annotations

import argparse

from mlops import io
from mlops.config import PATHS
from mlops.evaluation import curves, score
from mlops.imputation import ImputationPlan
from mlops.modeling import TRUSTED_TYPES


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    test = io.read_parquet(PATHS.test, "test split (run `dvc repro split`)")
    plan = ImputationPlan.from_dict(io.read_json(PATHS.imputation, "imputation plan"))
    model = io.load_model(PATHS.model, TRUSTED_TYPES)
    y_true = test[plan.target].to_numpy()
    proba = model.predict_proba(test[plan.names()])[:, 1]
    threshold = params.evaluate.threshold
    for name, table in curves(y_true, proba, threshold).items():
        io.write_csv(PATHS.plots_dir / f"{name}.csv", table)
    io.write_json(PATHS.metrics, score(y_true, proba, threshold))
