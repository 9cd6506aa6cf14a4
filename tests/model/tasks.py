"""Small real data for the tasks the Adult demo is not, and tune params fit for each task.

Wine (3 cultivars) for multiclass, diabetes (disease progression, a number) for
regression: both ship with scikit-learn. Frames are as ingest leaves them: a
multiclass target holds text labels, a regression target floats.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import yaml

from mlops.config import TuneConfig
from mlops.features.imputation import ImputationPlan, plan_imputation, read_quality
from mlops.tasks.families import default_fixed, families_for
from mlops.tasks.metrics import TaskName
from mlops.tasks.task import get_task
from tests.conftest import ROOT
from tests.model.conftest import IMPUTE
from tests.sklearn_frames import user_file

DOCUMENT: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
# A small search space per family; every other hyperparameter is fixed at
# scikit-learn's default (tasks.families.default_fixed).
SPACES: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "max_leaf_nodes": {"type": "int", "low": 8, "high": 32, "log": True},
    },
    "random_forest": {
        "n_estimators": {"type": "int", "low": 20, "high": 40, "log": False},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 5, "log": False},
    },
    "logistic_regression": {"C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
    "ridge": {"alpha": {"type": "float", "low": 0.01, "high": 100.0, "log": True}},
}


def dataset(task: TaskName) -> tuple[pd.DataFrame, str]:
    """(the data set, its target column) for ``multiclass`` or ``regression``, with the
    column names ingest would give them."""
    frame, target = user_file(task)
    frame.columns = [re.sub(r"\W+", "_", str(c)) for c in frame.columns]
    return frame, target


def simple_plan(frame: pd.DataFrame, target: str) -> ImputationPlan:
    """A plan on every column but the target: median and most frequent value."""
    quality = read_quality({}, list(frame.columns), target)
    return plan_imputation(frame, target, quality, IMPUTE, seed=0)


def tune_config(task: TaskName, **changes: Any) -> TuneConfig:
    """params.yaml ``tune`` for ``task``: its families, small spaces, every other
    hyperparameter at its default, the task's default metric; 3 trials on 3 folds."""
    families = families_for(task)
    tune = {
        **DOCUMENT["tune"],
        "metric": get_task(task).default_metric,
        "n_trials": 3,
        "cv_folds": 3,
        "max_rows": None,
        "timeout": None,
        "space": {f: SPACES[f] for f in families},
        "fixed": {f: default_fixed(f, task, frozenset(SPACES[f])) for f in families},
        "families": list(families),
        **changes,
    }
    return TuneConfig.model_validate(tune)
