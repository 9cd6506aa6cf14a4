"""Hyperparameter search with Optuna over model families and their search spaces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import optuna
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score

from mlops.config import CategoricalParam, FloatParam, IntParam, ModelFamily, TuneConfig
from mlops.imputation import ImputationPlan
from mlops.modeling import build_pipeline

FAMILY_KEY = "family"


def make_sampler(config: TuneConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def suggest(
    trial: optuna.Trial, family: str, space: Mapping[str, IntParam | FloatParam | CategoricalParam]
) -> dict[str, Any]:
    """Draw one value per hyperparameter; names are prefixed by family to stay unique."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        key = f"{family}.{name}"
        if isinstance(spec, IntParam):
            values[name] = trial.suggest_int(key, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, FloatParam):
            values[name] = trial.suggest_float(key, spec.low, spec.high, log=spec.log)
        else:
            values[name] = trial.suggest_categorical(key, list(spec.choices))
    return values


def trial_params(trial: optuna.Trial, config: TuneConfig) -> tuple[str, dict[str, Any]]:
    """The family and its complete hyperparameters (tuned plus fixed) for one trial."""
    family = cast(ModelFamily, trial.suggest_categorical(FAMILY_KEY, list(config.families)))
    tuned = suggest(trial, family, config.space.get(family, {}))
    return family, {**config.fixed.get(family, {}), **tuned}


def make_objective(
    train: pd.DataFrame, plan: ImputationPlan, config: TuneConfig, seed: int
) -> Callable[[optuna.Trial], float]:
    """Mean cross-validated ``config.metric`` of one trial's pipeline on the training split."""
    features, y = train[plan.names()], train[plan.target]
    folds = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=seed)

    def objective(trial: optuna.Trial) -> float:
        family, params = trial_params(trial, config)
        pipeline = build_pipeline(plan, family, params, seed)
        scores = cross_val_score(pipeline, features, y, cv=folds, scoring=config.metric)
        return float(scores.mean())

    return objective


def best_result(study: optuna.Study, config: TuneConfig) -> dict[str, Any]:
    """What the train stage needs: the family, its full params, and the score behind them."""
    best = study.best_trial
    family = cast(ModelFamily, best.params[FAMILY_KEY])
    prefix = f"{family}."
    tuned = {k.removeprefix(prefix): v for k, v in best.params.items() if k.startswith(prefix)}
    return {
        "family": family,
        "params": {**config.fixed.get(family, {}), **tuned},
        "metric": config.metric,
        "cv_score": round(float(cast(float, best.value)), 6),
        "trial": best.number,
        "n_trials": len(study.trials),
    }
