"""params.yaml `tune`: a bad search space, method, metric or budget is one line naming the key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops.config import parse_params
from mlops.errors import UsageError
from mlops.tuning.search import study_direction
from tests.conftest import ROOT

DOCUMENT: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
HGB = "hist_gradient_boosting"


def _error(tune: dict[str, Any]) -> str:
    document = copy.deepcopy(DOCUMENT)
    document["tune"] = tune
    with pytest.raises(UsageError) as caught:
        parse_params(document)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _tune() -> dict[str, Any]:
    return copy.deepcopy(DOCUMENT["tune"])


def test_the_shipped_tune_section_parses() -> None:
    tune = parse_params(copy.deepcopy(DOCUMENT)).tune
    assert tune.method in ("grid", "random", "tpe")
    assert set(tune.families) == {HGB, "random_forest", "logistic_regression"}


def _with(path: str, value: object) -> dict[str, Any]:
    tune = _tune()
    *parents, last = path.split(".")
    node = tune
    for key in parents:
        node = node[key]
    node[last] = value
    return tune


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("method", "bayes", "tune.method: input should be 'grid', 'random' or 'tpe'"),
        ("metric", "auc", "tune.metric: 'auc' is not a metric; binary metrics: roc_auc, "),
        ("metric", "rmse", "tune.metric: 'rmse' does not apply to a binary task; binary metrics: "),
        ("direction", "minimize", "unknown key tune.direction"),
        ("families", ["xgboost"], "tune.families: no search space under tune.space for xgboost"),
        ("families", ["ridge"], "tune.families: no search space under tune.space for ridge"),
        ("families", [HGB, HGB], "tune.families: families must be distinct"),
        ("families", [], "tune.families: tuple should have at least 1 item"),
        ("n_trials", 0, "tune.n_trials: input should be greater than 0"),
        ("n_trials", -3, "tune.n_trials: input should be greater than 0"),
        ("timeout", 0, "tune.timeout: input should be greater than 0"),
        ("timeout", -1.5, "tune.timeout: input should be greater than 0"),
        ("patience", 0, "tune.patience: input should be greater than 0"),
        ("cv_folds", 1, "tune.cv_folds: input should be greater than or equal to 2"),
        ("max_rows", 0, "tune.max_rows: input should be greater than 0"),
        ("grid_points", 1, "tune.grid_points: input should be greater than or equal to 2"),
        ("random_starts", -1, "tune.random_starts: input should be greater than or equal to 0"),
        ("storage", "", "tune.storage: string should have at least 1 character"),
        ("pruner.type", "patient", "tune.pruner: input tag 'patient' found using 'type'"),
        ("pruner.warmup_folds", 0, "tune.pruner.warmup_folds: input should be greater than 0"),
        ("space", {}, f"tune.families: no search space under tune.space for {HGB}, "),
        (f"space.{HGB}", {}, f"tune.space.{HGB}: dictionary should have at least 1 item"),
        (
            "space.catboost",
            {"depth": {"type": "int", "low": 1, "high": 3, "log": False}},
            "tune.space: unknown model family 'catboost'; expected one of hist_gradient_boosting, ",
        ),
        (
            f"space.{HGB}.max_leaf_nodes",
            {"type": "int", "low": 64, "high": 8, "log": True},
            f"tune.space.{HGB}.max_leaf_nodes: low (64) must not exceed high (8)",
        ),
        (
            f"space.{HGB}.learning_rate",
            {"type": "float", "low": 0.0, "high": 0.3, "log": True},
            f"tune.space.{HGB}.learning_rate: a log range needs low > 0, got low = 0",
        ),
        (
            f"space.{HGB}.l2_regularization",
            {"type": "float", "low": -1.0, "high": 1.0, "log": True},
            f"tune.space.{HGB}.l2_regularization: a log range needs low > 0, got low = -1.0",
        ),
        (
            f"space.{HGB}.max_features",
            {"type": "float", "low": 0.5, "high": 1.0},
            f"missing key tune.space.{HGB}.max_features.log",
        ),
        (
            f"space.{HGB}.max_features",
            {"type": "uniform", "low": 0.5, "high": 1.0, "log": False},
            f"tune.space.{HGB}.max_features: input tag 'uniform' found using 'type'",
        ),
        (
            f"space.{HGB}.max_bins",
            {"type": "categorical", "choices": []},
            f"tune.space.{HGB}.max_bins.choices: tuple should have at least 1 item",
        ),
        (
            f"space.{HGB}.max_bins",
            {"type": "categorical", "choices": [63, 63]},
            f"tune.space.{HGB}.max_bins.choices: choices must be distinct",
        ),
    ],
)
def test_a_bad_tune_key_is_named(path: str, value: object, expected: str) -> None:
    message = _error(_with(path, value))
    assert message.startswith(f"params.yaml: {expected}"), message


def test_a_missing_stopping_criterion_is_named() -> None:
    tune = _tune()
    del tune["patience"]
    assert _error(tune) == "params.yaml: missing key tune.patience"


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("roc_auc", "maximize"),
        ("pr_auc", "maximize"),
        ("log_loss", "minimize"),
        ("brier", "minimize"),
    ],
)
def test_the_metric_states_the_direction_of_the_search(metric: str, direction: str) -> None:
    document = copy.deepcopy(DOCUMENT)
    document["tune"]["metric"] = metric
    assert study_direction(parse_params(document).tune) == direction


@pytest.mark.parametrize(
    "pruner",
    [
        {"type": "none"},
        {"type": "median", "startup_trials": 0, "warmup_folds": 1},
        {"type": "successive_halving", "min_folds": 1, "reduction_factor": 2},
        {"type": "hyperband", "min_folds": 1, "reduction_factor": 3},
    ],
)
def test_every_pruner_parses(pruner: dict[str, object]) -> None:
    document = copy.deepcopy(DOCUMENT)
    document["tune"]["pruner"] = pruner
    assert parse_params(document).tune.pruner.type == pruner["type"]


def test_a_pruner_key_of_another_pruner_is_unknown() -> None:
    message = _error(
        _with("pruner", {"type": "median", "startup_trials": 1, "warmup_folds": 1, "min_folds": 1})
    )
    assert message == "params.yaml: unknown key tune.pruner.min_folds"
