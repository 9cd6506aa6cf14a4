"""Throwaway projects for the tasks the Adult demo is not: multiclass and regression.

Each is set up the way a user brings their own data: a CSV written from one of
scikit-learn's bundled data sets (wine: 3 cultivars; diabetes: disease
progression, a number), `mlops schema infer` to draft the contract, params for
the task, then `dvc repro`. Built once per session per task and copied whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, copy_project
from tests.conftest import run as conftest_run
from tests.model.tasks import SPACES
from tests.sklearn_frames import user_file

TASKS = ("multiclass", "regression")
_BUILT: dict[str, Path] = {}


def run(project: Path, *command: str) -> Any:
    """A tool of this venv (dvc, mlops, git) in ``project``; the caller checks the exit code."""
    return conftest_run(list(command), project, check=False)


def must(project: Path, *command: str) -> str:
    done = run(project, *command)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def dataset(task: str) -> tuple[pd.DataFrame, str]:
    """(the whole data set as a user would have it, its target column)."""
    return user_file(task)


# Per task: the model families, their search spaces, the target metric and the gate.
# Every other hyperparameter is frozen at scikit-learn's default (tasks.families).
SETTINGS: dict[str, dict[str, Any]] = {
    "multiclass": {
        "families": ["hist_gradient_boosting", "random_forest", "logistic_regression"],
        "metric": "log_loss",
        "calibration": "sigmoid",
        "slices": [],
        "gate": {
            "minimum": {"accuracy": 0.85, "f1_macro": 0.85},
            "maximum": {"log_loss": 0.5, "ece": 0.2},
            "baseline_margin": {"majority": 0.3, "logistic": -0.2},
            "max_degradation": {"log_loss": 0.1},
        },
    },
    "regression": {
        "families": ["hist_gradient_boosting", "random_forest", "ridge"],
        "metric": "rmse",
        "slices": ["sex"],
        "gate": {
            "minimum": {"r2": 0.2},
            "maximum": {"rmse": 70.0, "mae": 60.0},
            "baseline_margin": {"mean": 5.0, "linear": -15.0},
            "max_degradation": {"rmse": 5.0},
        },
    },
}


def task_params(document: dict[str, Any], task: str, source: str, target: str) -> dict[str, Any]:
    """The demo's params.yaml turned to ``task`` on ``source``, as a user would edit it."""
    from mlops.tasks.families import default_fixed

    settings = SETTINGS[task]
    families = settings["families"]
    spaces = {f: SPACES[f] for f in families}
    document["data"] = {
        **document["data"],
        "source": source,
        "format": "csv",
        "header": True,
        "columns": None,
        "na_values": [],
        "comment": None,
        "target": target,
        "task": task,
        "positive_class": None,
        "negative_class": None,
        "classes": None,
    }
    validate = document["validate"]
    validate["protected"] = []
    validate["quality"]["sentinels"] = {}
    validate["importance"] = {**validate["importance"], "scoring": settings["metric"]}
    document["impute"]["auto"]["max_rows"] = 1000
    document["tune"] = {
        **document["tune"],
        "metric": settings["metric"],
        "n_trials": 3,
        "cv_folds": 3,
        "timeout": None,
        "space": spaces,
        "fixed": {
            f: default_fixed(f, task, frozenset(spaces[f]))
            | ({"n_jobs": 1} if f == "random_forest" else {})
            for f in families
        },
        "families": families,
    }
    evaluate = document["evaluate"]
    evaluate["metric"] = settings["metric"]
    evaluate["importance"] = {"repeats": 2, "max_rows": 200}
    evaluate["business"]["correlation_trials"] = 3
    evaluate["slices"] = {"columns": settings["slices"], "bands": {}, "min_rows": 20}
    evaluate["staleness"]["stream"] = None  # the demo's adult.test is not this data's
    document["gate"] = {**document["gate"], **settings["gate"]}
    # The multiclass project serves, explains, promotes and rolls back a calibrated model.
    document["train"] = {**document["train"], "calibration": settings.get("calibration")}
    return document


def build(target: Path, task: str) -> Path:
    """A project on ``task``'s data, trained by `dvc repro` and committed (gate passed)."""
    copy_project(target)
    for name in ("artifacts.yaml", ".gto", ".gitignore"):
        shutil.copy2(ROOT / name, target / name)
    frame, column = dataset(task)
    source = f"data/external/{task}.csv"
    frame.to_csv(target / source, index=False)
    params = target / "params.yaml"
    document = task_params(yaml.safe_load(params.read_text()), task, source, column)
    params.write_text(yaml.safe_dump(document, sort_keys=False))
    must(target, "mlops", "schema", "infer", "--input", source)
    must(target, "git", "add", "-A")
    must(target, "git", "commit", "-qm", f"template on {task} data")
    must(target, "dvc", "repro")
    must(target, "git", "add", "-A")
    must(target, "git", "commit", "-qm", "trained")
    return target


def trained_task_project(factory: pytest.TempPathFactory, task: str) -> Path:
    """The session's trained project for ``task``, built by the first test that asks."""
    if task not in _BUILT:
        _BUILT[task] = build(factory.mktemp(task), task)
    return _BUILT[task]


def task_copy(factory: pytest.TempPathFactory, task: str, target: Path) -> Path:
    shutil.copytree(trained_task_project(factory, task), target, symlinks=True)
    return target
