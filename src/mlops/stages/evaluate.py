"""Stage ``evaluate``: judge the model on the held-out split -> metrics, details, plots.

Writes reports/metrics.json (flat numbers for `dvc metrics diff`),
reports/evaluation.json (baselines, slices, business value, importance, with
the reason for anything not available) and reports/plots/ (CSV for DVC plots,
PNG for people).
"""

from __future__ import annotations

import argparse

from mlops import charts, io
from mlops.config import PATHS
from mlops.evaluation import evaluate
from mlops.imputation import ImputationPlan
from mlops.modeling import TRUSTED_TYPES


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    train = io.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    test = io.read_parquet(PATHS.test, "test split (run `dvc repro split`)")
    plan = ImputationPlan.from_dict(io.read_json(PATHS.imputation, "imputation plan"))
    model = io.load_verified_model(PATHS.model, TRUSTED_TYPES, PATHS.dvc_lock)
    # Absent before the first tune, or from a tuner that keeps no table: reported, not fatal.
    trials = io.read_csv(PATHS.trials, "tuning trials") if PATHS.trials.is_file() else None
    result = evaluate(
        model,
        train,
        test,
        plan=plan,
        config=params.evaluate,
        tune=params.tune,
        seed=params.seed,
        trials=trials,
    )
    pictures = charts.render(result.tables, result.details)
    for name, table in result.tables.items():
        io.write_csv(PATHS.plots_dir / f"{name}.csv", table)
    for name, png in pictures.items():
        io.write_bytes(PATHS.plots_dir / f"{name}.png", png)
    io.write_json(PATHS.evaluation, result.details)
    io.write_json(PATHS.metrics, result.metrics)
