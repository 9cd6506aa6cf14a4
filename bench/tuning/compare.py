"""Optuna TPE + pruning vs GridSearchCV, RandomizedSearchCV and HalvingRandomSearchCV.

Run from the repository root after `dvc repro impute`:

    .venv/bin/python bench/tuning/compare.py [--budget 120] [--seeds 42 1 2 3 4]

Each search runs alone, in its own process, on one core, for the same time
budget, over the space in params.yaml `tune` (all model families, the family
itself a hyperparameter), on the same rows (tune.max_rows) and the same
stratified folds. Each candidate scored on every fold of the full sample is an
event (seconds since its search started, mean CV score). The table shows the
best score each search reached and when, and how soon TPE matched the best of
the scikit-learn searches. Prints figures; asserts nothing.

TPE is the tune stage's own objective, which fits the preprocess step
(imputation, encoding) once per fold and family; the scikit-learn searches get
the same saving the scikit-learn way, a cached Pipeline (``memory``), unless
``--no-cache``. A sampler's path depends on its seed, so TPE runs once per
``--seeds`` value and the verdict is on the median time over the seeds (a seed
that never gets there counts as the whole budget); each seed is printed too.

`--clock wall` (default) counts wall time. On a machine shared with other work,
`--clock cpu` counts each search's own CPU time instead: for a one-core search
that is the wall time it would take on an idle core, and the comparison no
longer depends on how busy the machine was while each search ran.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import optuna
import pandas as pd
from common import (  # bench/tuning/common.py
    FOLDS_WHAT,
    load,
    machine,
    one_core_study,
    single_core_fixed,
)
from joblib import Memory
from scipy import stats
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingRandomSearchCV, RandomizedSearchCV
from threadpoolctl import threadpool_limits

from mlops.config import CategoricalParam, FloatParam, IntParam, ParamSpec
from mlops.features.pipeline import build_pipeline
from mlops.tasks.metrics import TaskName, get_metric
from mlops.tasks.task import Folds, Task, get_task
from mlops.tuning import search

METHODS = ("optuna_tpe", "grid", "random", "halving_random")
LABELS = {
    "optuna_tpe": "Optuna TPE + pruning",
    "grid": "GridSearchCV",
    "random": "RandomizedSearchCV",
    "halving_random": "HalvingRandomSearchCV",
}
Event = tuple[str, float, float]  # kind ("full" | "partial" | "pruned" | ...), seconds, score


class Spent(Exception):
    """The search's time budget is used up."""


class LogIntUniform:
    """An integer drawn log-uniformly, as Optuna's suggest_int(log=True) draws it."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def rvs(self, random_state: Any = None) -> int:
        # Like Optuna: log-uniform over [low - 0.5, high + 0.5], then rounded.
        value = stats.loguniform(self.low - 0.5, self.high + 0.5).rvs(random_state=random_state)
        return int(np.clip(round(float(value)), self.low, self.high))


def distribution(spec: ParamSpec) -> Any:
    if isinstance(spec, CategoricalParam):
        return list(spec.choices)
    if isinstance(spec, IntParam):
        if spec.log:
            return LogIntUniform(spec.low, spec.high)
        return stats.randint(spec.low, spec.high + 1)
    assert isinstance(spec, FloatParam)
    if spec.log:
        return stats.loguniform(spec.low, spec.high)
    return stats.uniform(spec.low, spec.high - spec.low)


class TaskFolds:
    """The task's own folds (the tune stage's) as a scikit-learn splitter: on the full
    sample, the very folds TPE scores on; on HalvingRandomSearchCV's subsamples, the
    task's folds of those rows."""

    def __init__(self, task: Task, n_folds: int, seed: int) -> None:
        self.task, self.n_folds, self.seed = task, n_folds, seed

    def get_n_splits(self, *_: Any, **__: Any) -> int:
        return self.n_folds

    def split(self, features: Any, target: Any, groups: Any = None) -> Folds:
        return self.task.folds(pd.Series(np.asarray(target)), self.n_folds, self.seed, FOLDS_WHAT)


class Recorder:
    """A scorer that also reports each candidate once all its folds are scored."""

    def __init__(
        self, metric: str, task: TaskName, folds: int, full: int, emit: Callable[[Event], float]
    ) -> None:
        found = get_metric(metric, task)
        # The task's scorer is greater-is-better (a loss negated), as the searches expect;
        # ``sign`` turns it back into the metric, the value TPE's trials have.
        self.scorer, self.sign = get_task(task).scorer(found), found.sign
        self.folds, self.full, self.emit = folds, full, emit
        self.scores: list[float] = []
        self.rows = 0

    def __call__(self, estimator: Any, features: Any, target: Any) -> float:
        score = float(self.scorer(estimator, features, target))
        self.scores.append(self.sign * score)
        self.rows += len(features)
        if len(self.scores) == self.folds:
            # HalvingRandomSearchCV's early rounds see a fraction of the rows: not comparable.
            kind = "full" if self.rows >= 0.98 * self.full else "partial"
            left = self.emit((kind, 0.0, statistics.fmean(self.scores)))
            self.scores, self.rows = [], 0
            if left <= 0:
                raise Spent
        return score


def sklearn_search(
    method: str, params: Any, plan: Any, rows: int, scoring: Recorder, *, cache: str | None
) -> Any:
    fixed, seed, config = single_core_fixed(params), params.seed, params.tune
    task = get_task(params.data.task)
    splitter = TaskFolds(task, config.cv_folds, seed)
    spaces = []
    for family in config.families:
        pipeline = build_pipeline(plan, family, fixed[family], seed, task.name)
        entry: dict[str, Any] = {
            "preprocess": [pipeline.named_steps["preprocess"]],
            "model": [pipeline.named_steps["model"]],
        }
        for name, spec in config.space[family].items():
            values = search.grid_values(spec, config.grid_points)
            entry[f"model__{name}"] = values if method == "grid" else distribution(spec)
        spaces.append(entry)
    base = build_pipeline(plan, config.families[0], fixed[config.families[0]], seed, task.name)
    if cache is not None:
        # Each fold's fitted preprocess step is stored and reused by later candidates.
        base.set_params(memory=Memory(cache, verbose=0))
    common = {
        "cv": splitter,
        "scoring": scoring,
        "refit": False,
        "error_score": "raise",
        "return_train_score": False,  # HalvingRandomSearchCV would otherwise score twice
    }
    if method == "grid":
        return GridSearchCV(base, spaces, **common)
    if method == "random":
        # More candidates than fit in any budget here (all are drawn up front).
        return RandomizedSearchCV(base, spaces, n_iter=1000, random_state=seed, **common)
    # 81 candidates on 1/81 of the rows, a third of them on 3 times the rows, ..., the
    # last one on all rows: the usual factor-3 halving down to a single winner.
    return HalvingRandomSearchCV(
        base, spaces, factor=3, n_candidates=81, min_resources=rows // 81,
        max_resources=rows, random_state=seed, **common,
    )  # fmt: skip


def run_search(method: str, seed: int, budget: float, args: Any, events: Any) -> None:
    """One search in this (child) process until ``budget`` seconds of ``args.clock`` pass."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params, sample, plan = load()
    features, target = sample[plan.names()], sample[plan.target]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    start = clock()

    def emit(event: Event) -> float:
        """Send an event with its time; return the budget left."""
        seconds = clock() - start
        events.put((event[0], seconds, event[2]))
        return budget - seconds

    with (
        threadpool_limits(limits=1),
        tempfile.TemporaryDirectory() as tmp,
        contextlib.suppress(Spent),
    ):
        if method == "optuna_tpe":
            run_optuna(params, sample, plan, seed, emit)
        else:
            scoring = Recorder(
                params.tune.metric, params.data.task, params.tune.cv_folds, len(sample), emit
            )
            cache = None if args.no_cache else tmp
            search = sklearn_search(method, params, plan, len(sample), scoring, cache=cache)
            search.fit(features, target)
    emit(("done", 0.0, float("nan")))


def run_optuna(
    params: Any, sample: Any, plan: Any, seed: int, emit: Callable[[Event], float]
) -> None:
    study, objective, config = one_core_study(params, sample, plan, seed)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        kind = "full" if trial.state == optuna.trial.TrialState.COMPLETE else "pruned"
        if emit((kind, 0.0, float(trial.value or float("nan")))) <= 0:
            raise Spent  # leaves study.optimize at once, like Ctrl-C would

    points = search.starting_points(config, params.data.task)  # as the tune stage does
    search.optimise(study, objective, config, seed=seed, callbacks=[report], start_points=points)


def collect(method: str, seed: int, args: Any) -> list[Event]:
    """Run ``method`` in a child process; its events within the budget, in order."""
    budget = args.budget
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    child = context.Process(
        target=run_search, args=(method, seed, budget, args, events), daemon=True
    )
    child.start()
    seen: list[Event] = []
    while True:
        event = events.get()  # the child stops itself once its budget is used up
        if event[0] == "done":
            break
        if event[1] <= budget:
            seen.append(event)
    child.join()
    return seen


def best_at(events: list[Event], minimise: bool) -> tuple[float, float] | None:
    """The best full-sample score and the first time it was reached."""
    full = [(t, s) for kind, t, s in events if kind == "full"]
    if not full:
        return None
    score = min(s for _, s in full) if minimise else max(s for _, s in full)
    return score, min(t for t, s in full if s == score)


def first_reaching(events: list[Event], goal: float, minimise: bool) -> float | None:
    for kind, seconds, score in events:
        if kind == "full" and (score <= goal if minimise else score >= goal):
            return seconds
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per search")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4], help="TPE sampler seeds"
    )
    parser.add_argument("--parallel", type=int, default=1, help="searches at a time")
    parser.add_argument(
        "--no-cache", action="store_true", help="scikit-learn's searches without Pipeline memory"
    )
    args = parser.parse_args()
    params, sample, _ = load()
    minimise = search.study_direction(params.tune) == "minimize"
    print(machine())
    print(
        f"data: {len(sample)} training rows (tune.max_rows), {params.tune.cv_folds} folds, "
        f"metric {params.tune.metric}, families {', '.join(params.tune.families)}; "
        f"budget {args.budget:.0f} s of {args.clock} time per search, one core each, "
        f"{args.parallel} at a time; scikit-learn's pipelines "
        f"{'not cached' if args.no_cache else 'cached (memory)'}\n"
    )
    runs = [
        (method, seed)
        for method in args.methods
        for seed in (args.seeds if method == "optuna_tpe" else [params.seed])
    ]

    def run(item: tuple[str, int]) -> list[Event]:
        events = collect(*item, args)
        print(f"  ran {label(*item)}", flush=True)
        return events

    with ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(runs, pool.map(run, runs), strict=True))
    report(results, params.tune.metric, minimise, args.budget)


def label(method: str, seed: int) -> str:
    return f"{LABELS[method]} (seed {seed})" if method == "optuna_tpe" else LABELS[method]


def report(
    results: dict[tuple[str, int], list[Event]], metric: str, minimise: bool, budget: float
) -> None:
    print(
        f"\n{'search':34} {'scored':>7} {'on part':>7} {'pruned':>7} "
        f"{'best CV ' + metric:>16} {'at (s)':>8}"
    )
    bests = {}
    for run, events in results.items():
        kinds = [kind for kind, _, _ in events]
        best = best_at(events, minimise)
        bests[run] = best
        score, seconds = (f"{best[0]:.4f}", f"{best[1]:.1f}") if best else ("-", "-")
        print(
            f"{label(*run):34} {kinds.count('full'):7d} {kinds.count('partial'):7d} "
            f"{kinds.count('pruned'):7d} {score:>16} {seconds:>8}"
        )
    others = {run: b for run, b in bests.items() if run[0] != "optuna_tpe" and b is not None}
    tpe = [run for run in results if run[0] == "optuna_tpe"]
    if not tpe or not others:
        return
    pick = min if minimise else max
    run, (goal, when) = pick(others.items(), key=lambda item: item[1][0])
    print(f"\nbest of scikit-learn's searches: {goal:.4f} ({label(*run)}, at {when:.1f} s)")
    times = []
    for run in tpe:
        reached = first_reaching(results[run], goal, minimise)
        times.append(budget if reached is None else reached)
        verdict = "not within the budget" if reached is None else (
            f"at {reached:.1f} s = {100 * reached / when:.0f} % of that time"
        )  # fmt: skip
        print(f"  {label(*run):34} reached it {verdict}")
    median = statistics.median(times)
    met = sum(t <= 0.5 * when for t in times)
    print(
        f"Optuna TPE, median over {len(tpe)} seeds: {median:.1f} s = {100 * median / when:.0f} % "
        f"of that time (target <= 50 %; {met} of {len(tpe)} seeds within it)"
    )


if __name__ == "__main__":
    main()
