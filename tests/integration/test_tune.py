"""`mlops tune` in a project copy: outputs, resuming, workers, DVC tracking and bad input."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from tests.conftest import edit_params, run, tool_env
from tests.integration.tune_support import clone, prepared_project

STUDY_DB = Path("reports/tuning/study.db")
BEST = Path("models/best_params.json")
TRIALS = Path("reports/tuning/trials.csv")
METRICS = Path("reports/tuning/metrics.json")
PNGS = [
    Path(f"reports/tuning/{n}.png")
    for n in ("history", "importances", "parallel_coordinate", "slice")
]
OUTPUTS = [BEST, TRIALS, METRICS, *PNGS]
HGB = "hist_gradient_boosting"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_project(tmp_path_factory.mktemp("tune") / "project", rows=1500)


@pytest.fixture(scope="module")
def tuned_template(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = clone(template, tmp_path_factory.mktemp("tuned") / "project")
    with contextlib.chdir(project):
        assert main(["tune"]) == 0
    return project


@pytest.fixture
def fresh(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = clone(template, tmp_path / "project")
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def tuned(tuned_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = clone(tuned_template, tmp_path / "project")
    monkeypatch.chdir(project)
    return project


def snapshot(project: Path, paths: list[Path]) -> dict[Path, bytes | None]:
    return {p: (project / p).read_bytes() if (project / p).exists() else None for p in paths}


def load_study(project: Path) -> optuna.Study:
    storage = f"sqlite:///{project / STUDY_DB}"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


# --- a run and its outputs -------------------------------------------------------


def test_tune_writes_every_output(tuned_template: Path) -> None:
    params = yaml.safe_load((tuned_template / "params.yaml").read_text())["tune"]
    best = json.loads((tuned_template / BEST).read_text())
    assert best["family"] in params["families"]
    assert params["fixed"][best["family"]].items() <= best["params"].items()
    assert set(best["params"]) == set(params["fixed"][best["family"]]) | set(
        params["space"][best["family"]]
    )
    assert (best["metric"], best["n_trials"], best["stopped_by"]) == ("roc_auc", 3, "n_trials")
    assert 0.5 < best["cv_score"] <= 1.0
    trials = pd.read_csv(tuned_template / TRIALS)
    assert list(trials["number"]) == [0, 1, 2]
    assert {"state", "score", "best_score", "family"} <= set(trials.columns)
    assert "duration_s" not in trials.columns  # a fact of the run: reports/runs/tune.json
    assert trials["best_score"].iloc[-1] == pytest.approx(best["cv_score"])
    metrics = json.loads((tuned_template / METRICS).read_text())
    assert metrics["best_score"] == best["cv_score"]
    assert (metrics["trials"], metrics["failed"]) == (3, 0)
    assert "time_s" not in metrics
    record = json.loads((tuned_template / "reports/runs/tune.json").read_text())
    assert record["time_s"] > 0
    assert len(record["trial_s"]) == metrics["trials"]
    for png in PNGS:
        assert (tuned_template / png).read_bytes().startswith(b"\x89PNG")
    assert load_study(tuned_template).study_name.startswith("tune-")


def test_a_rerun_runs_no_trial_and_changes_nothing(tuned: Path) -> None:
    before = snapshot(tuned, OUTPUTS)
    assert main(["tune"]) == 0
    assert snapshot(tuned, OUTPUTS) == before
    assert len(load_study(tuned).trials) == 3


def test_a_fresh_study_reproduces_the_result(tuned: Path) -> None:
    before = snapshot(tuned, OUTPUTS)
    old = pd.read_csv(tuned / TRIALS)
    (tuned / STUDY_DB).unlink()
    assert main(["tune"]) == 0
    assert snapshot(tuned, [BEST]) == {BEST: before[BEST]}
    pd.testing.assert_frame_equal(pd.read_csv(tuned / TRIALS), old)


def test_raising_n_trials_continues_the_study(tuned: Path) -> None:
    started = [t.datetime_start for t in load_study(tuned).trials]
    edit_params(tuned, tune={"n_trials": 5})
    assert main(["tune"]) == 0
    study = load_study(tuned)
    assert len(study.trials) == 5
    assert [t.datetime_start for t in study.trials[:3]] == started
    assert list(pd.read_csv(tuned / TRIALS)["number"]) == [0, 1, 2, 3, 4]


def test_a_worker_runs_trials_and_writes_nothing(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--worker"]) == 0
    assert snapshot(fresh, OUTPUTS) == dict.fromkeys(OUTPUTS)
    assert len(load_study(fresh).trials) == 3
    assert "mlops tune: worker: study tune-" in capsys.readouterr().err
    assert main(["tune"]) == 0
    assert len(load_study(fresh).trials) == 3
    assert all(snapshot(fresh, OUTPUTS).values())


def _complete_trials(database: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            row = connection.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")
            return int(row.fetchone()[0])
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


def _interrupt_after(project: Path, complete: int) -> subprocess.CompletedProcess[str]:
    # A shell starts background jobs with SIGINT ignored, and a child inherits that
    # (so would `mlops tune`, and it would never see the interrupt): with a handler
    # installed here instead, the child starts with the default and Python's own.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            ["mlops", "tune"], cwd=project, env=tool_env(), stderr=subprocess.PIPE, text=True
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    deadline = time.monotonic() + 300
    while _complete_trials(project / STUDY_DB) < complete and process.poll() is None:
        assert time.monotonic() < deadline, "no trial completed in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


N_RESUME = 12


def test_an_interrupted_tune_resumes_where_it_stopped(
    fresh: Path, template: Path, tmp_path: Path
) -> None:
    # Trials on this small project take a fraction of a second: a study of 12 leaves
    # the interrupt seconds to land after the second trial and before the last.
    edit_params(fresh, tune={"n_trials": N_RESUME})
    interrupted = _interrupt_after(fresh, complete=2)
    assert interrupted.returncode == 130, interrupted.stderr
    assert "mlops tune: interrupted" in interrupted.stderr
    assert snapshot(fresh, OUTPUTS) == dict.fromkeys(OUTPUTS)
    done = [t for t in load_study(fresh).trials if t.state != optuna.trial.TrialState.FAIL]
    assert 2 <= len(done) < N_RESUME
    assert main(["tune"]) == 0
    trials = load_study(fresh).trials
    kept = [t for t in trials if t.state != optuna.trial.TrialState.FAIL]
    assert len(kept) == N_RESUME
    assert [t.datetime_start for t in kept[: len(done)]] == [t.datetime_start for t in done]
    # Resumed, it is the study an uninterrupted run makes: same trials, same best.
    straight = clone(template, tmp_path / "straight")
    edit_params(straight, tune={"n_trials": N_RESUME})
    with contextlib.chdir(straight):
        assert main(["tune"]) == 0
    assert [t.params for t in load_study(straight).trials] == [t.params for t in kept]
    # The best trial's params and score are the same; its number may differ by one,
    # when the interrupt landed mid-trial: the study keeps that trial, as failed.
    # Every output is the same bytes: the interrupted trial is a fact of that run.
    assert snapshot(fresh, OUTPUTS) == snapshot(straight, OUTPUTS)


def _running_named_trials(database: Path) -> int:
    """Trials running with their worker named: killed now, the trial is mid-objective."""
    query = (
        "SELECT count(*) FROM trials JOIN trial_user_attributes USING (trial_id) "
        "WHERE state = 'RUNNING' AND key = 'worker'"
    )
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            return int(connection.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_killed_tune_resumes_into_the_same_outputs(
    fresh: Path, template: Path, tmp_path: Path
) -> None:
    # SIGKILL: no handler runs, the trial stays RUNNING in the study. The resumed
    # run must fail it at once and run the same trials an uninterrupted run does
    # (it used to count the dead trial, shift every later seed, retry it at the
    # end, and pick another best: a different model without a word).
    edit_params(fresh, tune={"n_trials": N_RESUME})
    process = subprocess.Popen(["mlops", "tune"], cwd=fresh, env=tool_env(), text=True)
    deadline = time.monotonic() + 300
    while process.poll() is None and not (
        _complete_trials(fresh / STUDY_DB) >= 2 and _running_named_trials(fresh / STUDY_DB)
    ):
        assert time.monotonic() < deadline, "no trial ran in time"
        time.sleep(0.02)
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL
    states = [t.state for t in load_study(fresh).trials]
    assert optuna.trial.TrialState.RUNNING in states
    resumed = run(["mlops", "tune"], fresh, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "of a killed run failed; they run again" in resumed.stderr
    straight = clone(template, tmp_path / "straight")
    edit_params(straight, tune={"n_trials": N_RESUME})
    assert run(["mlops", "tune"], straight, check=False).returncode == 0
    assert snapshot(fresh, OUTPUTS) == snapshot(straight, OUTPUTS)


# --- experiment tracking with DVC ------------------------------------------------------


def test_the_study_database_is_ignored_by_git(root: Path) -> None:
    assert run(["git", "check-ignore", "-q", str(STUDY_DB)], root, check=False).returncode == 0


def test_dvc_compares_tuning_runs(tuned: Path, root: Path) -> None:
    # The tuned copy ran `mlops tune` directly: record that run in dvc.lock, commit it,
    # then let DVC rerun the stage with a larger budget and compare the two.
    shutil.copy(root / ".gitignore", tuned / ".gitignore")
    for command in (
        ["dvc", "commit", "-f", "-q", "tune"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "three trials"],
    ):
        result = run(command, tuned, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert str(STUDY_DB) not in run(["git", "ls-files"], tuned).stdout
    edit_params(tuned, tune={"n_trials": 4})
    result = run(["dvc", "repro", "tune"], tuned, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running stage 'tune'" in result.stdout
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], tuned).stdout)
    assert diff["reports/tuning/metrics.json"]["trials"] == {"old": 3, "new": 4, "diff": 1}
    plots = run(["dvc", "plots", "show", "--json"], tuned).stdout
    for path in ("reports/tuning/trials.csv", *map(str, PNGS)):
        assert path in plots, path


# --- bad input: one line naming the key, exit 2, earlier study and outputs untouched ------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(tune: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = tune
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(tune: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = tune
        for key in parents:
            node = node[key]
        del node[last]

    return edit


BAD_INPUT = [
    ("empty_space", _set(f"space.{HGB}", {}), f"params.yaml: tune.space.{HGB}: dictionary should"),
    (
        "low_above_high",
        _set(f"space.{HGB}.max_leaf_nodes", {"type": "int", "low": 64, "high": 8, "log": False}),
        f"params.yaml: tune.space.{HGB}.max_leaf_nodes: low (64) must not exceed high (8)",
    ),
    (
        "log_range_with_zero",
        _set(f"space.{HGB}.l2_regularization", {"type": "float", "low": 0, "high": 1, "log": True}),
        f"params.yaml: tune.space.{HGB}.l2_regularization: a log range needs low > 0",
    ),
    ("unknown_sampler", _set("method", "cmaes"), "params.yaml: tune.method: input should be"),
    (
        "unknown_family",
        _set("families", ["xgboost"]),
        "params.yaml: tune.families: no search space under tune.space for xgboost",
    ),
    (
        "family_of_another_task",
        _set("space.ridge", {"alpha": {"type": "float", "low": 0.1, "high": 1, "log": True}}),
        "params.yaml: tune.space.ridge: model family 'ridge' does not do binary; binary families: ",
    ),
    ("unknown_metric", _set("metric", "auc"), "params.yaml: tune.metric: 'auc' is not a metric; "),
    (
        "metric_of_another_task",
        _set("metric", "rmse"),
        "params.yaml: tune.metric: 'rmse' does not apply to a binary task; binary metrics: ",
    ),
    ("direction", _set("direction", "minimize"), "params.yaml: unknown key tune.direction"),
    (
        "zero_budget",
        _set("n_trials", 0),
        "params.yaml: tune.n_trials: input should be greater than 0",
    ),
    (
        "negative_budget",
        _set("n_trials", -5),
        "params.yaml: tune.n_trials: input should be greater",
    ),
    ("negative_timeout", _set("timeout", -1), "params.yaml: tune.timeout: input should be greater"),
    (
        "unknown_hyperparameter",
        _set(f"fixed.{HGB}.depth", 3),
        f"params.yaml: tune.fixed.{HGB}.depth: not a hyperparameter of HistGradientBoosting",
    ),
    (
        "left_out_hyperparameter",
        _drop(f"fixed.{HGB}.max_bins"),
        f"params.yaml: tune.fixed.{HGB}: 1 hyperparameter(s) of HistGradientBoostingClassifier "
        "neither tuned nor fixed; fix them here, e.g. at scikit-learn's defaults: "
        "{'max_bins': 255}",
    ),
    (
        "bad_fixed_value",
        _set("fixed.random_forest.criterion", "gain"),
        "params.yaml: tune.fixed.random_forest: The 'criterion' parameter of RandomForest",
    ),
    (
        "too_many_folds",
        _set("cv_folds", 5000),
        "params.yaml: tune.cv_folds: 5000 folds need at least",
    ),
    (
        "unreachable_storage",
        _set("storage", "postgresql://tuner:secret@127.0.0.1:9/optuna"),
        "params.yaml: tune.storage: cannot open postgresql+psycopg2://tuner:***@127.0.0.1:9/optuna",
    ),
    (
        "malformed_storage",
        _set("storage", "no such database"),
        "params.yaml: tune.storage: cannot open 'no such database' (",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT]
)
def test_bad_input_is_one_line_exit_2_and_leaves_the_earlier_study_intact(
    tuned: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    document = yaml.safe_load((tuned / "params.yaml").read_text())
    edit(document["tune"])
    (tuned / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    before = snapshot(tuned, [*OUTPUTS, STUDY_DB])
    capsys.readouterr()
    assert main(["tune"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith(f"mlops tune: error: {expected}"), err
    assert "secret" not in err
    assert snapshot(tuned, [*OUTPUTS, STUDY_DB]) == before
    assert len(load_study(tuned).trials) == 3


def test_missing_inputs_name_the_stage_to_run(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fresh / "data/split/train.parquet").unlink()
    assert main(["tune"]) == 2
    assert "data/split/train.parquet: training split (run `dvc repro split`) not found" in (
        capsys.readouterr().err
    )
    assert not (fresh / STUDY_DB).exists()


def test_a_study_whose_trials_all_fail_is_reported(
    fresh: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops.tuning.search

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Input X contains NaN")

    monkeypatch.setattr(mlops.tuning.search, "build_estimator", broken)
    assert main(["tune"]) == 2
    err = capsys.readouterr().err
    assert "mlops tune: error: no trial of study tune-" in err
    assert "first error: Input X contains NaN" in err
    assert snapshot(fresh, OUTPUTS) == dict.fromkeys(OUTPUTS)
