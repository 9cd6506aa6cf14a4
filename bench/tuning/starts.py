"""How many random start-up trials should TPE take? Time to a goal score, over seeds.

Run from the repository root after `dvc repro impute`:

    .venv/bin/python bench/tuning/starts.py [--goal 0.9177] [--starts 3 6 10] \
        [--seeds 42 1 2 3] [--budget 90] [--parallel 2]

Each run is the tune stage's own search (params.yaml `tune`: TPE, pruner, space,
folds, the same rows) with `random_starts` and the sampler seed replaced, on one
core, until a fully scored trial reaches `--goal` (by default the best score
scikit-learn's searches reach in bench/tuning/compare.py) or `--budget` seconds
pass. `--parallel` runs that many at once (one core each). Prints measured
figures; asserts nothing. One seed says little about a sampler: this is the
measurement behind the `tune.random_starts` default.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
from common import load, one_core_study  # bench/tuning/common.py
from threadpoolctl import threadpool_limits

from mlops.tuning import search


class Stop(Exception):
    """Leaves study.optimize from a callback."""


def one_run(starts: int, seed: int, goal: float, budget: float) -> None:
    """In this process: the search with these start-up trials and seed; prints JSON."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params, sample, plan = load()
    study, objective, config = one_core_study(params, sample, plan, seed, random_starts=starts)
    minimise = search.study_direction(config) == "minimize"
    start = time.perf_counter()
    reached: list[float] = []

    def check(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seconds = time.perf_counter() - start
        value = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
        if value is not None and ((value <= goal) if minimise else (value >= goal)):
            reached.append(seconds)
            raise Stop
        if seconds > budget:
            raise Stop

    with threadpool_limits(limits=1), contextlib.suppress(Stop):
        points = search.starting_points(config, params.data.task)  # as the tune stage does
        search.optimise(study, objective, config, seed=seed, callbacks=[check], start_points=points)
    print(json.dumps({"reached": reached[0] if reached else None, "trials": len(study.trials)}))


def child(starts: int, seed: int, args: argparse.Namespace) -> dict[str, float | None]:
    command = [sys.executable, __file__, "--one", str(starts), str(seed)]
    command += ["--goal", str(args.goal), "--budget", str(args.budget)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal", type=float, default=0.9177)
    parser.add_argument("--starts", type=int, nargs="+", default=[3, 6, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3])
    parser.add_argument("--budget", type=float, default=90.0)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(args.one[0], args.one[1], args.goal, args.budget)
        return
    runs = list(itertools.product(args.starts, args.seeds))
    with ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(runs, pool.map(lambda r: child(*r, args), runs), strict=True))
    print(
        f"seconds until a fully scored trial reaches {args.goal} (budget {args.budget:.0f} s, "
        f"one core each, {args.parallel} at a time)"
    )
    print(f"{'random_starts':>13}  " + "  ".join(f"seed {s:>3}" for s in args.seeds) + "  median")
    for starts in args.starts:
        times = [results[(starts, seed)]["reached"] for seed in args.seeds]
        cells = "  ".join(f"{t:8.1f}" if t is not None else "       -" for t in times)
        # A run that never reached the goal counts as the whole budget (a lower bound).
        median = statistics.median(t if t is not None else args.budget for t in times)
        print(f"{starts:>13}  {cells}  {median:6.1f}")


if __name__ == "__main__":
    main()
