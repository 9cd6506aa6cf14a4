"""Stage ``tune``: an Optuna search on the training split -> models/best_params.json."""

from __future__ import annotations

import argparse

import optuna

from mlops import io
from mlops.config import PATHS
from mlops.imputation import ImputationPlan
from mlops.tuning import best_result, make_objective, make_sampler


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    train = io.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    plan = ImputationPlan.from_dict(io.read_json(PATHS.imputation, "imputation plan"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=params.tune.direction, sampler=make_sampler(params.tune, params.seed)
    )
    objective = make_objective(train, plan, params.tune, params.seed)
    study.optimize(objective, n_trials=params.tune.n_trials, show_progress_bar=True)
    io.write_json(PATHS.best_params, best_result(study, params.tune))
