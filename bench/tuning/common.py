"""Shared by the tuning benchmarks: the demo training data and the search space in params.yaml."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from mlops.config import PATHS, Params, TuneConfig
from mlops.features.imputation import ImputationPlan
from mlops.io import files
from mlops.tasks.task import get_task
from mlops.tuning import search

ROOT = Path(__file__).resolve().parents[2]
FOLDS_WHAT = "params.yaml: tune.cv_folds"


def load(root: Path = ROOT) -> tuple[Params, pd.DataFrame, ImputationPlan]:
    """params.yaml, the training rows tune uses (its max_rows sample) and the imputation plan."""
    missing = [p for p in (PATHS.train, PATHS.imputation) if not (root / p).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(map(str, missing))}: run `dvc repro impute` first")
    params = files.load_params(root / "params.yaml")
    plan = ImputationPlan.from_dict(files.read_json(root / PATHS.imputation))
    train = files.read_parquet(root / PATHS.train)
    task, tune = get_task(params.data.task), params.tune
    sample = task.sample(train, plan.target, tune.max_rows, params.seed, keep=tune.cv_folds)
    return params, sample.reset_index(drop=True), plan


def single_core_fixed(params: Params) -> dict[str, dict[str, Any]]:
    """tune.fixed with every n_jobs set at 1, so each search uses one core, like the others."""
    return {
        family: {k: (1 if k == "n_jobs" and v is not None else v) for k, v in values.items()}
        for family, values in params.tune.fixed.items()
    }


def one_core_study(
    params: Params, sample: pd.DataFrame, plan: ImputationPlan, seed: int, **tune: Any
) -> tuple[optuna.Study, Any, TuneConfig]:
    """The tune stage's own study, objective and config, on one core and unbounded
    (the caller stops it), with ``seed`` for the sampler and ``tune`` keys replaced."""
    config = params.tune.model_copy(
        update={"fixed": single_core_fixed(params), "n_trials": 100_000, "timeout": None, **tune}
    )
    task = get_task(params.data.task)
    folds = task.folds(sample[plan.target], config.cv_folds, params.seed, FOLDS_WHAT)
    objective = search.make_objective(sample, plan, config, folds, seed=seed, task=task.name)
    study = optuna.create_study(
        direction=search.study_direction(config),
        sampler=search.make_sampler(config, seed),
        pruner=search.make_pruner(config),
    )
    return study, objective, config


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} at start"
    )
