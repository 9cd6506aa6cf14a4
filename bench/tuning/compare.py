"""Optuna TPE + pruning vs GridSearchCV, RandomizedSearchCV and HalvingRandomSearchCV.

Run from the repository root after `dvc repro impute`:

    .venv/bin/python bench/tuning/compare.py [--budget 120]

Each search runs alone, in its own process, on one core, for the same time
budget, over the space in params.yaml `tune` (all model families, the family
itself a hyperparameter), on the same rows (tune.max_rows) and the same
stratified folds. Each candidate scored on every fold of the full sample is an
event (seconds since its search started, mean CV score). The table shows the
best score each search reached and when, and how soon TPE matched the best of
the scikit-learn searches. Prints figures; asserts nothing.

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
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from common import load, machine, one_core_study, single_core_fixed  # bench/tuning/common.py
from scipy import stats
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
)
from threadpoolctl import threadpool_limits

from mlops import tuning
from mlops.config import CategoricalParam, FloatParam, IntParam, ParamSpec
from mlops.modeling import build_pipeline

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


class Recorder:
    """A scorer that also reports each candidate once all its folds are scored."""

    def __init__(self, metric: str, folds: int, full: int, emit: Callable[[Event], float]) -> None:
        name, self.sign = tuning.SCORERS[metric]
        self.scorer, self.folds, self.full, self.emit = get_scorer(name), folds, full, emit
        self.scores: list[float] = []
        self.rows = 0

    def __call__(self, estimator: Any, features: Any, target: Any) -> float:
        score = float(self.sign * self.scorer(estimator, features, target))
        self.scores.append(score)
        self.rows += len(features)
        if len(self.scores) == self.folds:
            # HalvingRandomSearchCV's early rounds see a fraction of the rows: not comparable.
            kind = "full" if self.rows >= 0.98 * self.full else "partial"
            left = self.emit((kind, 0.0, statistics.fmean(self.scores)))
            self.scores, self.rows = [], 0
            if left <= 0:
                raise Spent
        return score


def sklearn_search(method: str, params: Any, plan: Any, rows: int, scoring: Recorder) -> Any:
    fixed, seed, config = single_core_fixed(params), params.seed, params.tune
    splitter = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=seed)
    spaces = []
    for family in config.families:
        pipeline = build_pipeline(plan, family, fixed[family], seed)
        entry: dict[str, Any] = {
            "preprocess": [pipeline.named_steps["preprocess"]],
            "model": [pipeline.named_steps["model"]],
        }
        for name, spec in config.space[family].items():
            values = tuning.grid_values(spec, config.grid_points)
            entry[f"model__{name}"] = values if method == "grid" else distribution(spec)
        spaces.append(entry)
    base = build_pipeline(plan, config.families[0], fixed[config.families[0]], seed)
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


def run_search(method: str, budget: float, clock_name: str, events: Any) -> None:
    """One search in this (child) process until ``budget`` seconds of ``clock_name`` pass."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params, sample, plan = load()
    features, target = sample[plan.names()], sample[plan.target]
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    start = clock()

    def emit(event: Event) -> float:
        """Send an event with its time; return the budget left."""
        seconds = clock() - start
        events.put((event[0], seconds, event[2]))
        return budget - seconds

    with threadpool_limits(limits=1), contextlib.suppress(Spent):
        if method == "optuna_tpe":
            run_optuna(params, sample, plan, emit)
        else:
            scoring = Recorder(params.tune.metric, params.tune.cv_folds, len(sample), emit)
            sklearn_search(method, params, plan, len(sample), scoring).fit(features, target)
    emit(("done", 0.0, float("nan")))


def run_optuna(params: Any, sample: Any, plan: Any, emit: Callable[[Event], float]) -> None:
    study, objective, config = one_core_study(params, sample, plan, params.seed)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        kind = "full" if trial.state == optuna.trial.TrialState.COMPLETE else "pruned"
        if emit((kind, 0.0, float(trial.value or float("nan")))) <= 0:
            raise Spent  # leaves study.optimize at once, like Ctrl-C would

    tuning.optimise(study, objective, config, seed=params.seed, callbacks=[report])


def collect(method: str, budget: float, clock: str) -> list[Event]:
    """Run ``method`` in a child process; its events within ``budget``, in order."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    child = context.Process(target=run_search, args=(method, budget, clock, events), daemon=True)
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
    args = parser.parse_args()
    params, sample, _ = load()
    minimise = params.tune.direction == "minimize"
    print(machine())
    print(
        f"data: {len(sample)} training rows (tune.max_rows), {params.tune.cv_folds} folds, "
        f"metric {params.tune.metric}, families {', '.join(params.tune.families)}; "
        f"budget {args.budget:.0f} s of {args.clock} time per search, one core each\n"
    )
    results = {}
    for method in args.methods:
        results[method] = collect(method, args.budget, args.clock)
        print(f"  ran {LABELS[method]}", flush=True)
    report(results, params.tune.metric, minimise)


def report(results: dict[str, list[Event]], metric: str, minimise: bool) -> None:
    print(
        f"\n{'search':24} {'scored':>7} {'on part':>7} {'pruned':>7} "
        f"{'best CV ' + metric:>16} {'at (s)':>8}"
    )
    bests = {}
    for method, events in results.items():
        kinds = [kind for kind, _, _ in events]
        best = best_at(events, minimise)
        bests[method] = best
        score, seconds = (f"{best[0]:.4f}", f"{best[1]:.1f}") if best else ("-", "-")
        print(
            f"{LABELS[method]:24} {kinds.count('full'):7d} {kinds.count('partial'):7d} "
            f"{kinds.count('pruned'):7d} "
            f"{score:>16} {seconds:>8}"
        )
    others = {m: b for m, b in bests.items() if m != "optuna_tpe" and b is not None}
    if "optuna_tpe" not in results or not others:
        return
    pick = min if minimise else max
    method, (goal, when) = pick(others.items(), key=lambda item: item[1][0])
    reached = first_reaching(results["optuna_tpe"], goal, minimise)
    print(f"\nbest of scikit-learn's searches: {goal:.4f} ({LABELS[method]}, at {when:.1f} s)")
    if reached is None:
        print("Optuna TPE did not reach it within the budget")
    else:
        share = 100 * reached / when
        print(f"Optuna TPE reached it at {reached:.1f} s = {share:.0f} % of that time")


if __name__ == "__main__":
    main()
