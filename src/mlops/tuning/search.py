"""Hyperparameter search with Optuna over model families and their search spaces.

The model family is itself a hyperparameter: each trial picks one, then draws
that family's hyperparameters (names prefixed by the family, so the space is
conditional). A trial's score is the mean of ``tune.metric`` (the metric
registry's, in its own direction) over the task's CV folds, reported fold by
fold so a pruner can stop a hopeless trial early.

Reproducibility: the sampler is re-created before every trial with a seed
derived from ``seed`` and the trial's position in the study. So a sequential
run gives the same trials whether it ran in one go, was interrupted and
resumed, or had its ``n_trials`` raised later; a worker sharing a study
(``salt``) draws its own seeds and makes the study order-dependent instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeGuard, cast

import numpy as np
import optuna
import pandas as pd
from optuna.exceptions import ExperimentalWarning
from optuna.storages._heartbeat import BaseHeartbeat  # what fail_stale_trials checks for
from optuna.trial import FrozenTrial, TrialState

from mlops.config import (
    CategoricalParam,
    FloatParam,
    HalvingPrunerConfig,
    IntParam,
    MedianPrunerConfig,
    ModelFamily,
    ParamSpec,
    TuneConfig,
)
from mlops.errors import UsageError, shorten
from mlops.features.imputation import ImputationPlan
from mlops.features.pipeline import build_estimator, build_preprocessor
from mlops.tasks import families
from mlops.tasks.metrics import METRICS, TaskName, get_metric
from mlops.tasks.task import Folds, get_task

FAMILY_KEY = "family"
ERROR_ATTR = "error"
FOLDS_ATTR = "fold_scores"
WORKER_ATTR = "worker"
START_ATTR = "start"  # on a trial at a family's defaults (starting_points)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Keys of `tune` that do not change any trial's result, so not the study's identity.
UNTRACKED_KEYS = {"n_trials", "timeout", "patience", "target", "storage"}
Direction = Literal["maximize", "minimize"]
Callback = Callable[[optuna.Study, FrozenTrial], None]
Objective = Callable[[optuna.Trial], float]


# --- the search space ----------------------------------------------------------


def study_direction(config: TuneConfig) -> Direction:
    """Optuna's direction for ``tune.metric``: the metric registry says which way is better."""
    return "maximize" if METRICS[config.metric].greater_is_better else "minimize"


def check_space(config: TuneConfig, source: str, task: TaskName) -> None:
    """Fail with one line naming the key if a tuned or fixed value cannot work for ``task``.

    Each family must do ``task``; each key must be a hyperparameter of the
    family's estimator for it (not one the pipeline derives), tuned or fixed but
    not both; every fixed value, range end and choice must pass scikit-learn's
    own parameter validation; and a family the search uses must tune or fix every
    hyperparameter, so none is left to a default that a library upgrade may change.
    """
    for family in sorted(set(config.space) | set(config.fixed)):
        space, fixed = config.space.get(family, {}), config.fixed.get(family, {})
        section = f"{source}: tune.{'space' if family in config.space else 'fixed'}.{family}"
        try:
            estimator = families.get_family(family).estimator(task).__name__
        except ValueError as exc:
            raise UsageError(f"{section}: {exc}") from None
        for part, names in (("space", space), ("fixed", fixed)):
            for name in names:
                key = f"{source}: tune.{part}.{family}.{name}"
                _check_name(family, task, name, key, estimator)
        both = sorted(set(space) & set(fixed))
        if both:
            raise UsageError(
                f"{source}: tune.fixed.{family}.{both[0]}: also in tune.space.{family}; "
                "a hyperparameter is either tuned or fixed"
            )
        _check_values(family, task, fixed, [{}], f"{source}: tune.fixed.{family}")
        for name, spec in space.items():
            candidates = [{name: value} for value in _extremes(spec)]
            _check_values(family, task, fixed, candidates, f"{source}: tune.space.{family}.{name}")
        if family in config.families:
            _check_complete(family, task, {*space, *fixed}, f"{source}: tune.fixed.{family}")


def _check_name(family: str, task: TaskName, name: str, key: str, estimator: str) -> None:
    if name in families.get_family(family).derived:
        raise UsageError(f"{key}: set by the pipeline (from seed and imputation plan), remove it")
    if name not in families.hyperparameters(family, task):
        raise UsageError(f"{key}: not a hyperparameter of {estimator}")


def _check_complete(family: str, task: TaskName, covered: set[str], key: str) -> None:
    """Every hyperparameter of ``family``'s estimator for ``task`` is tuned or fixed:
    checked, not assumed."""
    missing = families.hyperparameters(family, task) - covered
    if missing:
        estimator = families.get_family(family).estimator(task).__name__
        defaults = families.default_fixed(family, task, frozenset(covered))
        raise UsageError(
            f"{key}: {len(missing)} hyperparameter(s) of {estimator} neither tuned nor fixed; "
            f"fix them here, e.g. at scikit-learn's defaults: {shorten(defaults, limit=200)}"
        )


def _extremes(spec: ParamSpec) -> list[Any]:
    if isinstance(spec, CategoricalParam):
        return list(spec.choices)
    return [spec.low, spec.high]


def _check_values(
    family: str,
    task: TaskName,
    fixed: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    key: str,
) -> None:
    for values in candidates:
        try:
            families.check_hyperparameters(family, task, {**fixed, **values})
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{key}: {exc}") from None


def grid_values(spec: ParamSpec, points: int) -> list[Any]:
    """The values method ``grid`` tries: the choices, or ``points`` spread over [low, high]."""
    if isinstance(spec, CategoricalParam):
        return list(spec.choices)
    spread = np.geomspace if spec.log else np.linspace
    values = spread(spec.low, spec.high, points)
    if isinstance(spec, IntParam):
        return sorted({round(float(v)) for v in values})
    return sorted({float(f"{v:.6g}") for v in values})


def grid_size(config: TuneConfig) -> int:
    """How many distinct configurations method ``grid`` has (all families together)."""
    return sum(
        int(np.prod([len(grid_values(s, config.grid_points)) for s in config.space[f].values()]))
        for f in config.families
    )


def suggest(
    trial: optuna.Trial, family: str, space: Mapping[str, ParamSpec], grid_points: int | None
) -> dict[str, Any]:
    """Draw one value per hyperparameter; with ``grid_points`` from the grid's values."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        key = f"{family}.{name}"
        if grid_points is not None:
            values[name] = trial.suggest_categorical(key, grid_values(spec, grid_points))
        elif isinstance(spec, IntParam):
            values[name] = trial.suggest_int(key, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, FloatParam):
            values[name] = trial.suggest_float(key, spec.low, spec.high, log=spec.log)
        else:
            values[name] = trial.suggest_categorical(key, list(spec.choices))
    return values


def trial_params(trial: optuna.Trial, config: TuneConfig) -> tuple[ModelFamily, dict[str, Any]]:
    """The family and its complete hyperparameters (tuned plus fixed) for one trial."""
    family = str(trial.suggest_categorical(FAMILY_KEY, list(config.families)))
    points = config.grid_points if config.method == "grid" else None
    tuned = suggest(trial, family, config.space[family], points)
    return family, {**config.fixed.get(family, {}), **tuned}


def default_value(spec: ParamSpec, default: Any) -> Any:
    """scikit-learn's ``default`` as a value ``spec`` can draw: itself where the space
    holds it, else the nearest value it holds. None on a numeric range means no limit
    (max_depth), the top of it; a numeric default among choices takes the nearest number."""
    if isinstance(spec, CategoricalParam):
        if any(default == c and type(default) is type(c) for c in spec.choices):
            return default
        numbers = {c: float(c) for c in spec.choices if _is_number(c)}
        if _is_number(default) and numbers:
            return min(numbers, key=lambda c: abs(numbers[c] - float(default)))
        return spec.choices[0]
    if default is None:
        value = float(spec.high)
    elif _is_number(default):
        value = min(max(float(default), spec.low), spec.high)
    else:  # a word on a numeric range: the middle of the range
        value = float(np.sqrt(spec.low * spec.high) if spec.log else (spec.low + spec.high) / 2)
    return round(value) if isinstance(spec, IntParam) else value


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def starting_points(config: TuneConfig, task: TaskName) -> list[dict[str, Any]]:
    """Each family of ``starts(config)`` at scikit-learn's defaults, as its space allows,
    in the order of ``tune.families``: the params of a study's first trials."""
    points = []
    for family in starts(config):
        values = families.defaults(family, task)
        drawn = {
            f"{family}.{name}": default_value(spec, values.get(name))
            for name, spec in config.space[family].items()
        }
        points.append({FAMILY_KEY: family, **drawn})
    return points


def split_params(params: Mapping[str, Any]) -> tuple[ModelFamily, dict[str, Any]]:
    """A trial's stored params back to (family, tuned hyperparameters without prefix)."""
    family = str(params[FAMILY_KEY])
    prefix = f"{family}."
    return family, {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


# --- data and objective --------------------------------------------------------


def make_objective(
    train: pd.DataFrame,
    plan: ImputationPlan,
    config: TuneConfig,
    folds: Folds,
    *,
    seed: int,
    task: TaskName,
    worker: str = "",
) -> Objective:
    """Mean ``config.metric`` of a trial's pipeline over ``folds``, reported fold by fold.

    The score is the metric itself (its direction is the study's), computed from
    what ``task`` predicts: a binary label at the threshold 0.5, the class
    probabilities, or the values. A fold where the metric is undefined (NaN)
    fails the trial with that reason, as any other error of a trial does.

    A trial scores what the pipeline would (preprocess, then the model), but the
    preprocess step (imputation and encoding) has no hyperparameters: it is fitted
    once per fold and model family, and its output on that fold is reused by every
    later trial in this process. Only the estimator is fitted per trial.

    ``worker`` names the process in each trial it runs (who ran what, study-wide).
    """
    features, y = train[plan.names()], train[plan.target]
    metric, predictor = get_metric(config.metric, task), get_task(task)
    encoded: dict[tuple[str, int], tuple[Any, Any]] = {}
    defaults = starting_points(config, task)

    def encoded_fold(family: str, step: int) -> tuple[Any, Any]:
        """``family``'s preprocess step fitted on fold ``step``: (fit rows, held-out rows)."""
        if (family, step) not in encoded:
            fit_rows, score_rows = folds[step]
            preprocess = build_preprocessor(plan, family)
            fitted = preprocess.fit_transform(features.iloc[fit_rows], y.iloc[fit_rows])
            encoded[family, step] = fitted, preprocess.transform(features.iloc[score_rows])
        return encoded[family, step]

    def objective(trial: optuna.Trial) -> float:
        family, params = trial_params(trial, config)
        # Named once every param is drawn: a named trial whose worker died is retried
        # with exactly these params (settle_dead_trials), as if it had never stopped.
        trial.set_user_attr(WORKER_ATTR, worker)
        # A family's defaults are scored on every fold: the bar the search must clear.
        at_defaults = trial.params in defaults
        if at_defaults:
            trial.set_user_attr(START_ATTR, "defaults")
        scores: list[float] = []
        for step, (fit_rows, score_rows) in enumerate(folds):
            try:
                fit_x, held_out_x = encoded_fold(family, step)
                model = build_estimator(plan, family, params, seed, task)
                model.fit(fit_x, y.iloc[fit_rows])
                score = metric(y.iloc[score_rows].to_numpy(), predictor.predict(model, held_out_x))
                if not np.isfinite(score):
                    raise ValueError(f"{metric.name} is undefined on fold {step + 1}")
                scores.append(score)
            except ValueError as exc:
                # Kept in the study, so a failed trial counts against the budget
                # (unlike one whose worker died) and its cause is on record.
                trial.set_user_attr(ERROR_ATTR, str(exc).splitlines()[0] if str(exc) else repr(exc))
                raise
            trial.set_user_attr(FOLDS_ATTR, [round(s, 6) for s in scores])
            trial.report(float(np.mean(scores)), step)
            if not at_defaults and step < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {step + 1} folds")
        return float(np.mean(scores))

    return objective


# --- sampler, pruner, study identity --------------------------------------------


def make_sampler(config: TuneConfig, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's own sampler for ``config.method``, seeded."""
    with warnings.catch_warnings():
        # multivariate/group/constant_liar are marked experimental but long-standing.
        warnings.simplefilter("ignore", ExperimentalWarning)
        if config.method == "grid":
            # Exhaustive over a define-by-run space: unlike GridSampler it handles the
            # conditional (per-family) space without enumerating other families' values.
            return optuna.samplers.BruteForceSampler(seed=seed, avoid_premature_stop=True)
        if config.method == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(
            seed=seed,
            # TPE counts every finished trial as a start-up one, the defaults too.
            n_startup_trials=config.random_starts + len(starts(config)),
            multivariate=True,
            group=True,
            constant_liar=True,
        )


def make_pruner(config: TuneConfig) -> optuna.pruners.BasePruner:
    pruner = config.pruner
    if isinstance(pruner, MedianPrunerConfig):
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_folds - 1
        )
    if isinstance(pruner, HalvingPrunerConfig) and pruner.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=pruner.min_folds,
            max_resource=config.cv_folds,
            reduction_factor=pruner.reduction_factor,
        )
    if isinstance(pruner, HalvingPrunerConfig):
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pruner.min_folds, reduction_factor=pruner.reduction_factor
        )
    return optuna.pruners.NopPruner()


def open_study(
    storage: optuna.storages.BaseStorage,
    config: TuneConfig,
    seed: int,
    task: TaskName,
    inputs: Mapping[str, str],
) -> optuna.Study:
    """The study these params and ``inputs`` define, in ``storage``: created, or loaded
    so that a rerun resumes it and workers join it."""
    return optuna.create_study(
        study_name=study_name(config, seed, task, inputs),
        storage=storage,
        direction=study_direction(config),
        sampler=make_sampler(config, seed),
        pruner=make_pruner(config),
        load_if_exists=True,
    )


def starts(config: TuneConfig) -> tuple[str, ...]:
    """The families a study first tries at their defaults (``tune.start_from_defaults``):
    none for the grid, which tries its own points exhaustively."""
    return config.families if config.start_from_defaults and config.method != "grid" else ()


def trial_seed(seed: int, position: int, salt: int | None = None) -> int:
    """The sampler seed for the trial at ``position``; a worker's ``salt`` makes its own."""
    digest = hashlib.sha256(f"{seed}:{position}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def study_name(config: TuneConfig, seed: int, task: TaskName, inputs: Mapping[str, str]) -> str:
    """A name that changes whenever anything that shapes a trial's result changes.

    ``inputs`` holds hashes of the data, the code and library versions. The
    stopping criteria and the storage are left out, so raising the budget
    continues the same study, and workers on other machines find it. The task is
    part of it: the same data and space read as another task is another search.
    """
    document = {
        "seed": seed,
        "task": task,
        "tune": config.model_dump(mode="json", exclude=UNTRACKED_KEYS),
        "inputs": dict(sorted(inputs.items())),
    }
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f"tune-{digest[:12]}"


# --- stopping ------------------------------------------------------------------


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Whether a trial uses up part of ``n_trials``.

    Finished, running and errored trials do; a queued (waiting) one not yet; one
    that failed without an error never: its worker died or was interrupted, and
    it is run again, so a resumed study continues where it stopped.
    """
    if trial.state == TrialState.FAIL:
        return ERROR_ATTR in trial.user_attrs
    return trial.state != TrialState.WAITING


def budget_used(trials: Sequence[FrozenTrial]) -> int:
    return sum(counts_toward_budget(t) for t in trials)


def next_start(
    trials: Sequence[FrozenTrial], points: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first of ``points`` that no trial holds (one that counts or is running)."""
    held = [t.params for t in trials if t.state == TrialState.RUNNING or counts_toward_budget(t)]
    return next((p for p in points if p not in held), None)


def best_trial(trials: Sequence[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The best complete trial; the earliest one wins a tie."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(complete, key=lambda t: (sign * cast(float, t.value), -t.number))


def stop_reason(trials: Sequence[FrozenTrial], config: TuneConfig, grid: int | None) -> str | None:
    """Which stopping criterion of ``config`` (or an exhausted grid) the study has met, if any."""
    if budget_used(trials) >= config.n_trials:
        return "n_trials"
    finished = [t for t in trials if t.state in FINISHED]
    tried = [t for t in trials if t.state in FINISHED or ERROR_ATTR in t.user_attrs]
    if grid is not None and len({json.dumps(t.params, sort_keys=True) for t in tried}) >= grid:
        return "exhausted"
    best = best_trial(trials, study_direction(config))
    if best is None:
        return None
    if config.target is not None and _reaches(cast(float, best.value), config.target, config):
        return "target"
    since_best = sum(t.number > best.number for t in finished)
    if config.patience is not None and since_best >= config.patience:
        return "patience"
    return None


def _reaches(value: float, target: float, config: TuneConfig) -> bool:
    return value >= target if study_direction(config) == "maximize" else value <= target


# --- the optimisation loop ------------------------------------------------------

# How Optuna refuses to record a trial another worker has already finished.
_TOLD_ALREADY = "Cannot tell a "


def optimise(
    study: optuna.Study,
    objective: Objective,
    config: TuneConfig,
    *,
    seed: int,
    salt: int | None = None,
    callbacks: Sequence[Callback] = (),
    poll_seconds: float = 2.0,
    start_points: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Run trials until a stopping criterion is met; return which one.

    Criteria count the whole study (resumed runs and other workers included).
    Before returning, it waits for other workers' running trials, so every
    worker, and the run that writes the results, sees the same finished study.
    Until each of ``start_points`` (``starting_points``) is held by a trial, the next
    trial takes the first one not held: an interrupted one is run again, so a resumed
    study holds them at the positions an uninterrupted one does. Workers (``salt``)
    leave them to the run without one: two workers choosing at the same instant
    would run the same point twice (the queue of ``enqueue_trial`` avoids that, but
    runs a point whose trial was interrupted after the others, out of order).
    """
    grid = grid_size(config) if config.method == "grid" else None
    deadline = None if config.timeout is None else time.monotonic() + config.timeout

    def reseed(study: optuna.Study, _: FrozenTrial | None = None) -> None:
        trials = study.get_trials(deepcopy=False)
        sampler = make_sampler(config, trial_seed(seed, budget_used(trials), salt))
        start = None if salt is not None else next_start(trials, start_points)
        if start is not None:  # Optuna's way to fix a trial's params
            with warnings.catch_warnings():  # experimental since Optuna 2.4, still so marked
                warnings.simplefilter("ignore", ExperimentalWarning)
                sampler = optuna.samplers.PartialFixedSampler(dict(start), sampler)
        study.sampler = sampler

    def stop_when_done(study: optuna.Study, _: FrozenTrial) -> None:
        if stop_reason(study.get_trials(deepcopy=False), config, grid):
            study.stop()

    while True:
        reason = stop_reason(study.get_trials(deepcopy=False), config, grid)
        timed_out = deadline is not None and time.monotonic() >= deadline
        if reason is None and not timed_out:
            reseed(study)
            left = None if deadline is None else deadline - time.monotonic()
            try:
                study.optimize(
                    objective,
                    timeout=left,
                    catch=(ValueError,),
                    callbacks=[stop_when_done, reseed, *callbacks],
                )
            except ValueError as exc:
                if not str(exc).startswith(_TOLD_ALREADY):
                    raise
                # This worker stalled past the heartbeat's grace (a paused or starved
                # machine): another worker failed its trial as stale and runs it again.
                print(
                    "mlops tune: this worker's trial was failed as stale by another worker "
                    "(no heartbeat) and runs again there; going on with the next",
                    file=sys.stderr,
                )
            continue
        _wait_for_running(study, poll_seconds)
        # A stale trial failed while waiting is run again unless time is up.
        reason = stop_reason(study.get_trials(deepcopy=False), config, grid)
        if reason or timed_out:
            return reason or "timeout"


def settle_dead_trials(
    study: optuna.Study, host: str, alive: Callable[[int], bool], poll_seconds: float = 2.0
) -> list[int]:
    """Fail the running trials whose worker is dead, before this run adds any; their numbers.

    A worker killed outright (SIGKILL, out of memory, a power cut) leaves its trial
    RUNNING. Counted as used, it shifted every later trial's seed, and failed only
    once its heartbeat went stale, mid-search, it was retried at the end: the resumed
    study, and so the model, silently differed from an uninterrupted one. Failed
    here first, the study reads exactly as after a Ctrl-C, which resumes into the
    same trials. A trial of this host whose process is gone is failed at once; one
    whose worker is unknown (killed before its objective named it) is waited for
    until its heartbeat says whether it lives. Other hosts' trials are theirs.
    """
    dead: list[int] = []
    storage = study._storage  # as in _beat_silent_trials: what fail_stale_trials uses
    retry = (
        storage.get_heartbeat_stale_trial_callback() if isinstance(storage, BaseHeartbeat) else None
    )
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if owner == host and pid.isdigit() and not alive(int(pid)):
            # Failed, then retried with its params, exactly as a stale heartbeat would be.
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            if retry is not None:
                retry(study, storage.get_trial(trial._trial_id))
            dead.append(trial.number)
    unnamed = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if WORKER_ATTR not in t.user_attrs
    }
    if unnamed:
        _wait_for_running(study, poll_seconds, only=unnamed)
    return dead


def _wait_for_running(
    study: optuna.Study, poll_seconds: float, only: set[int] | None = None
) -> None:
    """Block until no trial of the study (of ``only``, if given) is running;
    heartbeat-stale ones are failed."""
    beaten: set[int] = set()
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if only is None or t.number in only
        ]
        if not running:
            return
        _beat_silent_trials(study, running, beaten)
        time.sleep(poll_seconds)


def _beat_silent_trials(
    study: optuna.Study, running: Sequence[FrozenTrial], beaten: set[int]
) -> None:
    """Give each running trial older than the grace period one heartbeat, once.

    Optuna never fails a running trial that has no heartbeat at all, and a worker
    killed between creating its trial and the first beat leaves exactly that: the
    study would wait for it forever. One beat from here makes such a trial go stale
    like any other, a grace period later. A live trial loses nothing: its worker
    beats every few seconds anyway. (Optuna's heartbeat interface, the storage a
    study wraps and a trial's storage id are private; fail_stale_trials uses them.)
    """
    storage = study._storage  # an RDBStorage, wrapped in Optuna's cache
    if not isinstance(storage, BaseHeartbeat):
        return
    interval = storage.get_heartbeat_interval()
    if interval is None:
        return
    grace = getattr(getattr(storage, "_backend", storage), "grace_period", None) or 2 * interval
    now = datetime.now()  # Optuna stamps datetime_start with the local, naive time too
    for trial in running:
        trial_id, started = trial._trial_id, trial.datetime_start
        if trial_id in beaten or started is None or (now - started).total_seconds() < grace:
            continue
        storage.record_heartbeat(trial_id)
        beaten.add(trial_id)


# --- results -------------------------------------------------------------------


def counted_study(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of ``study`` with only the trials that count, numbered in order.

    A trial whose worker was killed or interrupted is run again; it is a fact of
    that run, not of the search. Left out, a study that was interrupted and
    resumed reads exactly like one that ran in one go: the same trials, the same
    numbers, so the tables, plots and best params written from it are the same
    bytes. (Timings are left out too: they are the run's, see ``trial_durations``.)
    """
    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if trial.state not in FINISHED and ERROR_ATTR not in trial.user_attrs:
            continue
        copy.add_trial(
            optuna.trial.create_trial(
                state=trial.state,
                value=trial.value if trial.state == TrialState.COMPLETE else None,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=trial.user_attrs,
                intermediate_values=trial.intermediate_values,
            )
        )
    return copy


def best_result(study: optuna.Study, config: TuneConfig, stopped_by: str) -> dict[str, Any]:
    """What the train stage needs: the family, its full params, and the score behind them."""
    trials = study.get_trials(deepcopy=False)
    best = best_trial(trials, study_direction(config))
    if best is None:
        errors = [t.user_attrs[ERROR_ATTR] for t in trials if ERROR_ATTR in t.user_attrs]
        detail = f"; first error: {errors[0]}" if errors else ""
        raise UsageError(f"no trial of study {study.study_name} completed{detail}")
    family, tuned = split_params(best.params)
    return {
        "family": family,
        "params": {**config.fixed.get(family, {}), **tuned},
        "metric": config.metric,
        "direction": study_direction(config),
        "cv_score": round(float(cast(float, best.value)), 6),
        "trial": best.number,
        "n_trials": sum(t.state in FINISHED for t in trials),
        "method": config.method,
        "stopped_by": stopped_by,
    }


def trials_table(trials: Sequence[FrozenTrial], direction: str) -> pd.DataFrame:
    """One row per trial: state, score (partial when pruned), best so far, duration, params."""
    table = pd.DataFrame([_trial_row(t) for t in sorted(trials, key=lambda t: t.number)])
    complete = table["score"].where(table["state"] == "complete").astype(float)
    best = complete.cummax() if direction == "maximize" else complete.cummin()
    table.insert(3, "best_score", best.ffill())
    leading = ["number", "state", "score", "best_score", "folds_scored"]
    return table[leading + sorted(c for c in table.columns if c not in leading)]


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    partial = list(trial.intermediate_values.values())
    complete = trial.state == TrialState.COMPLETE
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "score": trial.value if complete else (partial[-1] if partial else None),
        "folds_scored": len(partial),
        **trial.params,
    }


def tuning_metrics(trials: Sequence[FrozenTrial], direction: str) -> dict[str, float | int]:
    """The study's summary for `dvc metrics diff` / `dvc exp show`: best score, budget used.

    Only what the same study always gives: how long trials took is a fact of the
    run, not of the study (see ``trial_durations``), so it stays out of this DVC
    metric and a reproduced study leaves the file byte-identical.
    """
    best = best_trial(trials, direction)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    return {
        "best_score": round(float(cast(float, best.value)), 6) if best else float("nan"),
        "trials": count[TrialState.COMPLETE] + count[TrialState.PRUNED],
        "complete": count[TrialState.COMPLETE],
        "pruned": count[TrialState.PRUNED],
        "failed": count[TrialState.FAIL],
    }


def trial_durations(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """How long the finished trials took: a fact of this run, kept out of the outputs."""
    seconds = {
        t.number: round(t.duration.total_seconds(), 3)
        for t in trials
        if t.duration and t.state in FINISHED
    }
    return {"time_s": round(sum(seconds.values()), 1), "trial_s": seconds}


# --- plots ---------------------------------------------------------------------

PLOTS = ("history", "importances", "parallel_coordinate", "slice")


def plot_pngs(study: optuna.Study, family: str, metric: str) -> dict[str, bytes]:
    """Optuna's matplotlib plots as PNG bytes; the per-parameter ones for ``family`` only."""
    # Imported here: matplotlib is slow to load and only this function needs it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # never open a window, whatever the environment says
    from optuna.visualization import matplotlib as plots  # noqa: PLC0415

    one = family_study(study, family)
    # Optuna's plots switch pyplot to the ggplot style for the whole process; the context
    # puts the style back, so charts drawn later in this process (evaluate's, in tests and
    # notebooks) look, and hash, as they would on their own.
    with matplotlib.rc_context(), warnings.catch_warnings():
        # Experimental plotting API, and PED-ANOVA's note that a small study is noisy.
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        figures: dict[str, Any] = {
            "history": plots.plot_optimization_history(study, target_name=metric),
            "importances": plots.plot_param_importances(
                study, evaluator=_SortedImportances(), target_name=metric
            ),
            "parallel_coordinate": plots.plot_parallel_coordinate(one, target_name=metric),
            "slice": plots.plot_slice(one, target_name=metric),
        }
        for name in ("parallel_coordinate", "slice"):
            _figure(figures[name]).suptitle(f"{family} trials", y=1.02)
        return {name: _png(_figure(axes)) for name, axes in figures.items()}


class _SortedImportances(optuna.importance.PedAnovaImportanceEvaluator):
    """Optuna's default evaluator, with ties in a fixed order.

    It returns parameters of equal importance (every other family's, all 0) in
    set order, which changes with Python's string hashing from run to run, and so
    did the plot's bytes; sorted by (importance, name) the same study always
    draws the same picture.
    """

    def evaluate(self, study: optuna.Study, *args: Any, **kwargs: Any) -> dict[str, float]:
        values: dict[str, float] = super().evaluate(study, *args, **kwargs)
        return dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))


def family_study(study: optuna.Study, family: str) -> optuna.Study:
    """An in-memory copy of the complete trials of one family, parameter names unprefixed.

    Parallel-coordinate and slice plots of a conditional space would otherwise
    mix every family's parameters, most of them missing in most trials.
    """
    prefix = f"{family}."
    copy = optuna.create_study(directions=study.directions)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.params.get(FAMILY_KEY) != family:
            continue
        names = [k for k in trial.params if k.startswith(prefix)]
        copy.add_trial(
            optuna.trial.create_trial(
                value=trial.value,
                params={k.removeprefix(prefix): trial.params[k] for k in names},
                distributions={k.removeprefix(prefix): trial.distributions[k] for k in names},
            )
        )
    return copy


def _figure(axes: Any) -> Any:
    """The figure behind what a plot function returned: one Axes or an array of them."""
    return np.ravel(axes)[0].figure


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    buffer = io.BytesIO()
    # No "Software" stamp: identical studies give identical bytes.
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
