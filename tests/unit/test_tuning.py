"""The search logic on a cheap synthetic objective: stopping, resuming, determinism, outputs."""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from pydantic import TypeAdapter

from mlops.config import ParamSpec, TuneConfig, parse_params
from mlops.errors import UsageError
from mlops.tuning import search
from tests.conftest import ROOT

DOCUMENT: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
HGB = "hist_gradient_boosting"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def config(**tune: object) -> TuneConfig:
    document = copy.deepcopy(DOCUMENT)
    document["tune"].update(tune)
    return parse_params(document).tune


def synthetic(cfg: TuneConfig, fail_on: Callable[[int], bool] = lambda _: False) -> Any:
    """A fast objective over the real (conditional) space: HGB near lr 0.1 scores best."""

    def objective(trial: optuna.Trial) -> float:
        family, params = search.trial_params(trial, cfg)
        if fail_on(trial.number):
            trial.set_user_attr(search.ERROR_ATTR, "boom")
            raise ValueError("boom")
        base = {HGB: 0.9, "random_forest": 0.85, "logistic_regression": 0.8}[family]
        score = base - 0.1 * abs(math.log10(params.get("learning_rate", 1.0) / 0.1))
        for step in range(cfg.cv_folds):
            trial.report(score - 0.01 * (cfg.cv_folds - 1 - step), step)
            if step < cfg.cv_folds - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return score

    return objective


def study(cfg: TuneConfig, seed: int = 0) -> optuna.Study:
    return optuna.create_study(
        direction=search.study_direction(cfg),
        sampler=search.make_sampler(cfg, seed),
        pruner=search.make_pruner(cfg),
    )


def run(cfg: TuneConfig, seed: int = 0, into: optuna.Study | None = None, **kw: Any) -> Any:
    target = into or study(cfg, seed)
    reason = search.optimise(target, synthetic(cfg, **kw), cfg, seed=seed, poll_seconds=0.01)
    return target, reason


def dies_at(number: int, cfg: TuneConfig) -> Any:
    """The synthetic objective, interrupted (Ctrl-C) inside trial ``number``."""
    objective = synthetic(cfg)

    def dying(trial: optuna.Trial) -> float:
        if trial.number == number:
            search.trial_params(trial, cfg)
            raise KeyboardInterrupt
        return objective(trial)

    return dying


def params_of(target: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in target.get_trials() if search.counts_toward_budget(t)]


# --- the space -------------------------------------------------------------------


def test_grid_values_spread_over_the_range() -> None:
    cfg = config()
    space = cfg.space
    assert search.grid_values(space[HGB]["learning_rate"], 3) == [0.03, 0.0948683, 0.3]
    assert search.grid_values(space[HGB]["max_leaf_nodes"], 3) == [8, 23, 64]
    assert search.grid_values(space["random_forest"]["max_depth"], 4) == [6, 12, 18, 24]
    assert search.grid_values(space["random_forest"]["max_features"], 3) == ["sqrt", "log2", 0.5]


def test_grid_size_counts_each_family_s_product() -> None:
    cfg = config(families=["random_forest"], grid_points=2)
    # n_estimators, max_depth, min_samples_leaf: 2 values each x max_features: 3 choices
    assert search.grid_size(cfg) == 24
    both = config(families=["random_forest", "logistic_regression"], grid_points=4)
    assert search.grid_size(both) == 4**3 * 3 + 4  # + C: 4 values


def test_a_trial_draws_one_family_and_only_its_prefixed_params() -> None:
    cfg = config()
    target = study(cfg)
    trial = target.ask()
    family, params = search.trial_params(trial, cfg)
    assert set(trial.params) == {"family"} | {f"{family}.{name}" for name in cfg.space[family]}
    assert params == {**cfg.fixed[family], **search.split_params(trial.params)[1]}
    for name, spec in cfg.space[family].items():
        if spec.type != "categorical":
            assert spec.low <= params[name] <= spec.high


# --- where a new study starts -------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        ({"type": "float", "low": 0.03, "high": 0.3, "log": True}, 0.1, 0.1),
        ({"type": "float", "low": 1.0e-6, "high": 10.0, "log": True}, 0.0, 1.0e-6),
        ({"type": "float", "low": 0.5, "high": 1.0, "log": False}, 2, 1.0),
        ({"type": "int", "low": 6, "high": 24, "log": False}, None, 24),
        ({"type": "int", "low": 8, "high": 64, "log": True}, 31, 31),
        ({"type": "int", "low": 10, "high": 200, "log": True}, 5.4, 10),
        ({"type": "float", "low": 1.0, "high": 100.0, "log": True}, "auto", 10.0),
        ({"type": "categorical", "choices": [None, "balanced"]}, None, None),
        ({"type": "categorical", "choices": ["sqrt", "log2", 0.5]}, "sqrt", "sqrt"),
        ({"type": "categorical", "choices": ["sqrt", "log2", 0.5]}, 1.0, 0.5),
        ({"type": "categorical", "choices": ["sqrt", "log2"]}, 1.0, "sqrt"),
        ({"type": "categorical", "choices": [0, 1]}, True, 0),
    ],
)
def test_a_default_is_the_nearest_value_the_space_holds(
    spec: dict[str, Any], default: Any, expected: Any
) -> None:
    drawn = search.default_value(TypeAdapter(ParamSpec).validate_python(spec), default)
    assert drawn == expected
    assert type(drawn) is type(expected)


def test_the_starting_points_are_scikit_learn_s_defaults_in_family_order() -> None:
    points = search.starting_points(config(), "binary")
    assert [p[search.FAMILY_KEY] for p in points] == list(config().families)
    hgb = {k: v for k, v in points[0].items() if k != search.FAMILY_KEY}
    assert hgb == {
        f"{HGB}.learning_rate": 0.1,
        f"{HGB}.max_leaf_nodes": 31,
        f"{HGB}.min_samples_leaf": 20,
        f"{HGB}.l2_regularization": 1.0e-6,  # 0.0, below the log range
        f"{HGB}.max_features": 1.0,
    }
    linear = points[config().families.index("logistic_regression")]
    assert linear == {search.FAMILY_KEY: "logistic_regression", "logistic_regression.C": 1.0}
    assert search.starting_points(config(method="grid"), "binary") == []
    assert search.starting_points(config(start_from_defaults=False), "binary") == []


def test_the_first_trials_are_the_defaults_each_once_whatever_stopped_the_run() -> None:
    # A run stopped after one trial, resumed, and raised
    # again runs exactly the trials one longer run does, each default once.
    cfg = config(n_trials=6, timeout=None)
    points = search.starting_points(cfg, "binary")
    whole = study(cfg)
    search.optimise(whole, synthetic(cfg), cfg, seed=0, poll_seconds=0.01, start_points=points)
    assert [t.params for t in whole.trials[: len(points)]] == points
    assert all(t.params not in points for t in whole.trials[len(points) :])
    pieces = study(cfg)
    for n in (1, 2, 6):
        part = cfg.model_copy(update={"n_trials": n})
        search.optimise(pieces, synthetic(part), part, seed=0, poll_seconds=0.01,
                        start_points=points)  # fmt: skip
    assert [t.params for t in pieces.trials] == [t.params for t in whole.trials]
    # Interrupted inside the second default: the resumed run runs it again, then on.
    interrupted, objective = study(cfg), synthetic(cfg)
    with pytest.raises(KeyboardInterrupt):
        search.optimise(interrupted, dies_at(1, cfg), cfg, seed=0, start_points=points)
    assert interrupted.trials[1].state == TrialState.FAIL
    search.optimise(interrupted, objective, cfg, seed=0, poll_seconds=0.01, start_points=points)
    assert params_of(interrupted) == params_of(whole)
    # A worker (salted) leaves them to the run without a salt: two could take one at once.
    worker = study(cfg)
    search.optimise(worker, objective, cfg, seed=0, salt=5, poll_seconds=0.01, start_points=points)
    assert not any(t.params in points for t in worker.trials)


def test_tpe_draws_its_random_starts_after_the_defaults() -> None:
    sampler = search.make_sampler(config(random_starts=3), 0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 3 + len(config().families)  # Optuna's own count


def test_check_space_accepts_the_shipped_params() -> None:
    search.check_space(config(), "params.yaml", "binary")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t["space"][HGB].update(
                learning_rat={"type": "float", "low": 0.1, "high": 1, "log": False}
            ),
            f"tune.space.{HGB}.learning_rat: not a hyperparameter of HistGradientBoosting",
        ),
        (
            lambda t: t["fixed"]["random_forest"].update(random_state=1),
            "tune.fixed.random_forest.random_state: set by the pipeline",
        ),
        (
            lambda t: t["fixed"][HGB].update(learning_rate=0.1),
            f"tune.fixed.{HGB}.learning_rate: also in tune.space.{HGB}",
        ),
        (
            lambda t: t["fixed"][HGB].update(loss="hinge"),
            f"tune.fixed.{HGB}: The 'loss' parameter of HistGradientBoostingClassifier must be",
        ),
        (
            lambda t: t["space"]["random_forest"]["max_features"].update(choices=["sqrt", "all"]),
            "tune.space.random_forest.max_features: The 'max_features' parameter",
        ),
        (
            lambda t: t["space"][HGB]["max_features"].update(high=1.5),
            f"tune.space.{HGB}.max_features: The 'max_features' parameter",
        ),
        (
            lambda t: t["fixed"][HGB].pop("max_bins"),
            f"tune.fixed.{HGB}: 1 hyperparameter(s) of HistGradientBoostingClassifier neither "
            "tuned nor fixed; fix them here, e.g. at scikit-learn's defaults: {'max_bins': 255}",
        ),
    ],
)
def test_check_space_names_the_bad_key(
    edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    document = copy.deepcopy(DOCUMENT)
    edit(document["tune"])
    with pytest.raises(UsageError) as caught:
        search.check_space(parse_params(document).tune, "params.yaml", "binary")
    assert str(caught.value).startswith(f"params.yaml: {expected}")
    assert "\n" not in str(caught.value)


# --- data ------------------------------------------------------------------------


# --- samplers, pruners, identity --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("grid", optuna.samplers.BruteForceSampler),
    ],
)
def test_each_method_is_optuna_s_own_sampler(method: str, kind: type) -> None:
    assert isinstance(search.make_sampler(config(method=method), 0), kind)


@pytest.mark.parametrize(
    ("pruner", "kind"),
    [
        ({"type": "median", "startup_trials": 2, "warmup_folds": 1}, optuna.pruners.MedianPruner),
        (
            {"type": "successive_halving", "min_folds": 1, "reduction_factor": 2},
            optuna.pruners.SuccessiveHalvingPruner,
        ),
        (
            {"type": "hyperband", "min_folds": 1, "reduction_factor": 3},
            optuna.pruners.HyperbandPruner,
        ),
        ({"type": "none"}, optuna.pruners.NopPruner),
    ],
)
def test_each_pruner_is_optuna_s_own(pruner: dict[str, object], kind: type) -> None:
    assert isinstance(search.make_pruner(config(pruner=pruner)), kind)


def test_trial_seeds_differ_by_position_and_worker() -> None:
    assert search.trial_seed(42, 3) == search.trial_seed(42, 3)
    seeds = {search.trial_seed(42, p) for p in range(100)}
    assert len(seeds) == 100
    assert search.trial_seed(42, 3, salt=1) != search.trial_seed(42, 3, salt=2)
    assert all(0 <= s < 2**32 for s in seeds)


def test_study_name_tracks_what_shapes_a_result_and_nothing_else() -> None:
    inputs = {"train": "abc", "tuning": "def"}
    name = search.study_name(config(), 42, "binary", inputs)
    assert name.startswith("tune-")
    assert search.study_name(config(), 42, "binary", dict(inputs)) == name
    for budget in ({"n_trials": 99}, {"timeout": 5}, {"patience": 3}, {"target": 0.9}):
        assert search.study_name(config(**budget), 42, "binary", inputs) == name, budget
    assert search.study_name(config(storage="sqlite:///x.db"), 42, "binary", inputs) == name
    assert search.study_name(config(), 43, "binary", inputs) != name
    assert search.study_name(config(), 42, "multiclass", inputs) != name
    assert search.study_name(config(cv_folds=5), 42, "binary", inputs) != name
    assert search.study_name(config(method="random"), 42, "binary", inputs) != name
    assert search.study_name(config(), 42, "binary", {**inputs, "train": "abd"}) != name


# --- stopping ------------------------------------------------------------------------


def test_n_trials_counts_the_whole_study() -> None:
    target, reason = run(config(n_trials=7, patience=None))
    assert reason == "n_trials"
    assert len(target.trials) == 7


def test_patience_stops_after_k_trials_without_improvement() -> None:
    target, reason = run(config(n_trials=200, patience=4))
    assert reason == "patience"
    best = search.best_trial(target.trials, "maximize")
    assert best is not None
    later = [t for t in target.trials if t.number > best.number and t.state in search.FINISHED]
    assert len(later) == 4
    assert len(target.trials) < 200


def test_target_stops_once_reached() -> None:
    target, reason = run(config(n_trials=200, target=0.8))
    assert reason == "target"
    assert max(t.value for t in target.trials if t.value is not None) >= 0.8
    assert [t.value >= 0.8 for t in target.trials if t.value is not None].count(True) == 1


def test_target_for_a_minimised_metric() -> None:
    cfg = config(metric="log_loss", target=0.5)
    assert search.study_direction(cfg) == "minimize"
    trials = study(cfg)
    trials.add_trial(optuna.trial.create_trial(value=0.6))
    assert search.stop_reason(trials.trials, cfg, None) is None
    trials.add_trial(optuna.trial.create_trial(value=0.4))
    assert search.stop_reason(trials.trials, cfg, None) == "target"


def test_timeout_stops_the_run() -> None:
    cfg = config(n_trials=10_000, timeout=0.5)
    target, reason = run(cfg)
    assert reason == "timeout"
    assert 0 < len(target.trials) < 10_000


def test_grid_stops_when_exhausted() -> None:
    cfg = config(method="grid", families=["logistic_regression"], grid_points=6, n_trials=100)
    target, reason = run(cfg)
    assert reason == "exhausted"
    assert len(target.trials) == search.grid_size(cfg) == 6
    assert len({str(t.params) for t in target.trials}) == 6


def test_failed_trials_count_and_are_reported() -> None:
    cfg = config(n_trials=4)
    target, reason = run(cfg, fail_on=lambda n: True)
    assert reason == "n_trials"
    assert [t.state for t in target.trials] == [TrialState.FAIL] * 4
    with pytest.raises(UsageError, match=r"no trial of study .* completed; first error: boom"):
        search.best_result(target, cfg, reason)


def test_a_trial_that_died_does_not_count_against_the_budget() -> None:
    cfg = config(n_trials=3)
    target = study(cfg)
    target.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    assert search.budget_used(target.trials) == 0
    run(cfg, into=target)
    assert [t.state for t in target.trials][1:] == [TrialState.COMPLETE] * 3


def test_the_pruner_prunes_on_fold_scores() -> None:
    cfg = config(n_trials=30, pruner={"type": "median", "startup_trials": 3, "warmup_folds": 1})
    target, _ = run(cfg)
    pruned = [t for t in target.trials if t.state == TrialState.PRUNED]
    assert pruned
    assert all(len(t.intermediate_values) < cfg.cv_folds for t in pruned)


# --- determinism and resuming -----------------------------------------------------


def test_same_seed_same_trials_other_seed_other_trials() -> None:
    cfg = config(n_trials=12)
    first, second, other = run(cfg, 7)[0], run(cfg, 7)[0], run(cfg, 8)[0]
    assert params_of(first) == params_of(second)
    assert params_of(first) != params_of(other)


def test_raising_n_trials_continues_exactly_like_one_longer_run() -> None:
    straight, _ = run(config(n_trials=12), 7)
    resumed, _ = run(config(n_trials=5), 7)
    run(config(n_trials=12), 7, into=resumed)
    assert params_of(resumed) == params_of(straight)


def test_an_interrupted_run_resumes_with_the_same_trials() -> None:
    cfg = config(n_trials=12)
    straight, _ = run(cfg, 7)
    interrupted = study(cfg, 7)
    with pytest.raises(KeyboardInterrupt):
        search.optimise(interrupted, dies_at(5, cfg), cfg, seed=7)
    assert interrupted.trials[5].state == TrialState.FAIL
    run(cfg, 7, into=interrupted)
    assert params_of(interrupted) == params_of(straight)


def test_a_finished_study_runs_no_more_trials() -> None:
    cfg = config(n_trials=6)
    target, _ = run(cfg, 7)
    before = [t.datetime_start for t in target.trials]
    _, reason = run(cfg, 7, into=target)
    assert reason == "n_trials"
    assert [t.datetime_start for t in target.trials] == before


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_run_again(
    tmp_path: Path,
) -> None:
    # Optuna never fails a running trial with no heartbeat at all; left alone, the
    # study would wait for it forever (seen: a worker killed right after creating one).
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'study.db'}",
        heartbeat_interval=1,
        grace_period=1,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1),
    )
    cfg = config(n_trials=1)
    target = optuna.create_study(storage=storage, direction=search.study_direction(cfg))
    silent = target.ask()  # RUNNING, and nothing will ever beat for it
    done: list[str] = []
    searcher = threading.Thread(
        target=lambda: done.append(
            search.optimise(target, synthetic(cfg), cfg, seed=0, poll_seconds=0.05)
        ),
        daemon=True,
    )
    searcher.start()
    searcher.join(timeout=60)
    assert done == ["n_trials"], "the search still waits for the silent trial"
    trials = target.get_trials()
    assert trials[silent.number].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == silent.number]
    assert [t.state for t in retried] == [TrialState.COMPLETE]


# --- results ----------------------------------------------------------------------


def test_best_result_holds_family_full_params_and_score() -> None:
    cfg = config(n_trials=10)
    target, reason = run(cfg, 3)
    best = search.best_result(target, cfg, reason)
    assert best["family"] == target.best_trial.params["family"]
    assert best["params"] == {
        **cfg.fixed[best["family"]],
        **search.split_params(target.best_trial.params)[1],
    }
    assert best["cv_score"] == round(target.best_value, 6)
    assert best["trial"] == target.best_trial.number
    assert (best["metric"], best["stopped_by"], best["n_trials"]) == ("roc_auc", "n_trials", 10)


def test_best_trial_prefers_the_earliest_of_equals() -> None:
    target = study(config())
    for value in (0.5, 0.7, 0.7):
        target.add_trial(optuna.trial.create_trial(value=value))
    best = search.best_trial(target.trials, "maximize")
    assert best is not None
    assert best.number == 1
    worst = search.best_trial(target.trials, "minimize")
    assert worst is not None
    assert worst.number == 0


def test_trials_table_has_every_trial_and_a_running_best() -> None:
    cfg = config(n_trials=15, pruner={"type": "median", "startup_trials": 2, "warmup_folds": 1})
    target, _ = run(cfg, 1, fail_on=lambda n: n == 3)
    table = search.trials_table(target.trials, "maximize")
    assert list(table["number"]) == list(range(15))
    assert list(table.columns[:6]) == [
        "number",
        "state",
        "score",
        "best_score",
        "folds_scored",
        "family",
    ]
    assert set(table["state"]) >= {"complete", "fail"}
    assert table.loc[3, "state"] == "fail"
    assert np.isnan(table.loc[3, "score"])
    complete = table["score"].where(table["state"] == "complete")
    assert table["best_score"].iloc[-1] == complete.max()
    assert table["best_score"].is_monotonic_increasing


def test_tuning_metrics_summarise_the_budget_used() -> None:
    cfg = config(n_trials=15, pruner={"type": "median", "startup_trials": 2, "warmup_folds": 1})
    target, _ = run(cfg, 1, fail_on=lambda n: n == 3)
    metrics = search.tuning_metrics(target.trials, "maximize")
    states = [t.state for t in target.trials]
    assert metrics["complete"] == states.count(TrialState.COMPLETE)
    assert metrics["pruned"] == states.count(TrialState.PRUNED)
    assert metrics["failed"] == 1
    assert metrics["trials"] == 14
    assert metrics["best_score"] == round(target.best_value, 6)
    assert "time_s" not in metrics
    durations = search.trial_durations(target.trials)
    finished = {t.number for t in target.trials if t.state != TrialState.FAIL}
    assert set(durations["trial_s"]) == finished
    assert durations["time_s"] == pytest.approx(sum(durations["trial_s"].values()), abs=0.1)


def test_plots_are_png_images() -> None:
    cfg = config(n_trials=12)
    target, reason = run(cfg, 2)
    best = search.best_result(target, cfg, reason)
    import matplotlib

    style = dict(matplotlib.rcParams)
    pngs = search.plot_pngs(target, best["family"], "roc_auc")
    assert sorted(pngs) == sorted(search.PLOTS)
    for png in pngs.values():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    changed = {k for k, v in matplotlib.rcParams.items() if str(v) != str(style[k])}
    # Optuna's ggplot style did not outlive the plots.
    assert changed <= {"backend", "backend_fallback"}


def test_family_study_keeps_one_family_unprefixed() -> None:
    cfg = config(n_trials=12)
    target, _ = run(cfg, 2)
    one = search.family_study(target, HGB)
    expected = [
        t for t in target.trials if t.params["family"] == HGB and t.state == TrialState.COMPLETE
    ]
    assert [t.value for t in one.trials] == [t.value for t in expected]
    assert all(set(t.params) == set(cfg.space[HGB]) for t in one.trials)


def test_a_trial_failed_as_stale_by_another_worker_does_not_stop_this_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A worker paused past the heartbeat's grace finds its trial failed by another
    worker (and retried there): Optuna refuses to record it, and the worker goes on."""
    cfg = config(n_trials=4, method="random", random_starts=1)
    target = study(cfg)
    objective = synthetic(cfg)

    def stalled(trial: optuna.Trial) -> float:
        if trial.number == 1:  # what the other worker's stale-trial check does
            target._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        return objective(trial)

    assert search.optimise(target, stalled, cfg, seed=0, poll_seconds=0.01) == "n_trials"
    states = [t.state for t in target.trials]
    assert states[1] == TrialState.FAIL
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 4
    assert "was failed as stale by another worker" in capsys.readouterr().err
