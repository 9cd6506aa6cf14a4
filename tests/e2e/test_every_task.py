"""The model tests and the gate tests, once per task, on a model `dvc repro` trained.

binary: the Adult sample project (tests/model/trained.py); multiclass and
regression: wine and diabetes (tests/task_projects.py). Each test reads its
task's facts (metric direction, baselines, prediction columns) from the task
layer, so none of it is written per task here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.cli import main
from mlops.config import EvaluateConfig
from mlops.evaluation.report import importances
from mlops.features.imputation import ImputationPlan
from mlops.io import files, modelfile
from mlops.tasks.families import trusted_types
from mlops.tasks.metrics import METRICS, better
from mlops.tasks.task import get_task
from tests.conftest import edit_params
from tests.model.trained import trained_copy
from tests.task_projects import task_copy

pytestmark = pytest.mark.slow
TASKS = ("binary", "multiclass", "regression")
LENIENT: dict[str, Any] = {
    "minimum": {"roc_auc": 0.85},
    "maximum": {"log_loss": 0.5, "slice_gap": 0.5},
    "baseline_margin": {"majority": 0.2, "logistic": -0.05},
    "max_degradation": {"roc_auc": 0.01, "log_loss": 0.02},
}


@pytest.fixture(params=TASKS)
def project(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, Path]:
    """A private copy of the session's trained project of one task, as the working directory."""
    task = str(request.param)
    target = tmp_path / "project"
    if task == "binary":
        trained_copy(tmp_path_factory, target)
        # Bounds the sample-trained model meets (the demo's are for the full data set).
        edit_params(target, gate=LENIENT)
    else:
        task_copy(tmp_path_factory, task, target)
    monkeypatch.chdir(target)
    return task, target


def _json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def _model() -> Any:
    return modelfile.load_verified(Path("models/model.skops"), trusted_types(), Path("dvc.lock"))


def _plan() -> ImputationPlan:
    return ImputationPlan.from_dict(_json("models/imputation.json"))


# --- model tests ---------------------------------------------------------------------


def test_the_model_beats_the_trivial_baseline_on_held_out_rows(project: tuple[str, Path]) -> None:
    # The linear baseline is the gate's to judge, with its margin (gate.baseline_margin):
    # a model tuned for two trials on a small sample may tie it.
    task, _ = project
    evaluation = _json("reports/evaluation.json")
    metric = evaluation["metric"]
    assert list(evaluation["baselines"]) == list(get_task(task).baselines)
    trivial = evaluation["baselines"][get_task(task).baselines[0]][metric]
    assert better(metric, evaluation["test"][metric], trivial)


def test_predictions_are_finite_deterministic_and_in_the_task_schema(
    project: tuple[str, Path],
) -> None:
    task_name, _ = project
    task, model, plan = get_task(task_name), _model(), _plan()
    test = files.read_parquet(Path("data/split/test.parquet"))
    first = task.predict(model, test[plan.names()])
    again = task.predict(_model(), test[plan.names()])
    assert np.array_equal(first.label, again.label)
    columns = task.columns(first)
    assert list(columns)[-1] == "prediction"
    probabilities = [c for c in columns if c.startswith("probability")]
    if task_name == "multiclass":
        assert probabilities == [f"probability_{c}" for c in task.classes(model)]
    else:
        assert probabilities == (["probability"] if task_name == "binary" else [])
    if first.proba is not None:
        assert np.allclose(first.proba.sum(axis=1), 1.0)
        assert ((first.proba >= 0) & (first.proba <= 1)).all()
    else:
        assert np.isfinite(first.value).all()


def test_columns_the_model_does_not_use_do_not_move_its_predictions(
    project: tuple[str, Path],
) -> None:
    task_name, _ = project
    task, model, plan = get_task(task_name), _model(), _plan()
    test = files.read_parquet(Path("data/split/test.parquet")).head(200)
    unused = [c for c in test.columns if c not in plan.names()]
    assert plan.target in unused
    shuffled = test.copy()
    for column in unused:  # the target, protected attributes, dropped columns
        shuffled[column] = test[column].sample(frac=1.0, random_state=1).to_numpy()
    before = task.predict(model, test[plan.names()])
    after = task.predict(model, shuffled[plan.names()])
    assert np.array_equal(before.label, after.label)


def test_permutation_importance_is_seeded_and_oriented(project: tuple[str, Path]) -> None:
    task_name, _ = project
    params = files.load_params()
    config = EvaluateConfig.model_validate(
        params.evaluate.model_dump() | {"importance": {"repeats": 2, "max_rows": 200}}
    )
    test = files.read_parquet(Path("data/split/test.parquet"))
    kwargs: dict[str, Any] = {"plan": _plan(), "task": get_task(task_name), "config": config}
    first = importances(_model(), test, seed=3, **kwargs)
    assert first.equals(importances(_model(), test, seed=3, **kwargs))
    # Oriented so that a useful feature's shuffle is a loss, whatever the metric's direction.
    assert first["importance"].max() > 0


# --- gate tests ------------------------------------------------------------------------


def _gate(*args: str) -> int:
    return main(["gate", *args])


def _checks() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _json("reports/gate.json")["checks"]}


def _metric() -> str:
    return str(_json("reports/evaluation.json")["metric"])


def test_the_first_run_passes_change_checks_vacuously(project: tuple[str, Path]) -> None:
    assert _gate() == 0
    changes = [c for c in _checks().values() if c["kind"] == "change"]
    assert changes
    assert all("passes vacuously" in c["note"] for c in changes)
    assert _gate("--check") == 0


def test_a_bound_the_model_misses_fails_the_gate_and_check_exits_1(
    project: tuple[str, Path],
) -> None:
    _, path = project
    metric = _metric()
    value = _json("reports/metrics.json")[metric]
    # A bound just past the model's value, on the side the metric's direction makes a miss.
    side, bound = (
        ("minimum", value + 0.01) if METRICS[metric].greater_is_better else ("maximum", value / 2)
    )
    other = "maximum" if side == "minimum" else "minimum"
    edit_params(path, gate={side: {metric: bound}, other: {}})
    assert _gate() == 0  # a failing gate is a result
    result = _json("reports/gate.json")
    assert result["passed"] is False
    assert result["failed"] == [f"{side}.{metric}"], result["failed"]
    assert _gate("--check") == 1


@pytest.mark.parametrize("production_is_better", [True, False])
def test_change_against_production_follows_the_metric_s_direction(
    project: tuple[str, Path], production_is_better: bool
) -> None:
    _, path = project
    metric = _metric()
    value = _json("reports/metrics.json")[metric]
    step = 0.2 * abs(value) + 0.05
    up = production_is_better == METRICS[metric].greater_is_better
    edit_params(path, gate={"max_degradation": {metric: 0.01 * abs(value)}})
    Path("models/production.json").write_text(
        json.dumps(
            {
                "version": "v1.0.0",
                "git_revision": "0" * 40,
                "model_md5": "1" * 32,
                "metrics": {metric: value + step if up else value - step},
                "promoted_at": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    assert _gate() == 0
    verdict = _checks()[f"max_degradation.{metric}"]["verdict"]
    assert verdict == ("fail" if production_is_better else "pass")


def test_a_threshold_on_another_task_s_metric_is_one_params_line(
    project: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    task, path = project
    other = "rmse" if task != "regression" else "roc_auc"
    edit_params(path, gate={"minimum": {other: 0.5}})
    assert _gate() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"gate.minimum: reports/metrics.json has no '{other}' for a {task} task" in err
