"""Scale-out: trials per minute of one `mlops tune --worker` vs two sharing one study.

Run from the repository root after `dvc repro impute`:

    .venv/bin/python bench/tuning/workers.py [--seconds 120]

Each run is real `mlops tune --worker` processes in a throwaway directory
holding the pipeline's training split and imputation plan, sharing one SQLite
study (the default storage; a database server works the same way). Every fit
uses one core (random forest n_jobs 1, one OpenMP thread), the sampler is
random and nothing is pruned, so a trial costs the same on average in both
runs. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import yaml
from common import ROOT, machine  # bench/tuning/common.py
from optuna.trial import TrialState

from mlops.config import PATHS

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}


def workspace(base: Path, seconds: float, name: str) -> Path:
    """A directory `mlops tune` can run in, with its own study database."""
    path = base / name
    for source in (PATHS.train, PATHS.imputation):
        (path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, path / source)
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    tune = document["tune"]
    tune.update(method="random", n_trials=100_000, timeout=seconds, patience=None, target=None)
    tune.update(pruner={"type": "none"}, storage=f"sqlite:///{path / 'study.db'}")
    for values in tune["fixed"].values():
        if values.get("n_jobs") is not None:
            values["n_jobs"] = 1
    (path / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def trials_per_minute(path: Path, workers: int) -> tuple[int, float, float, float]:
    """Run ``workers`` processes to the time limit.

    Returns trials completed, the window they took (first start to last end),
    trials per minute, and CPU seconds per trial (all workers together).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = [
        subprocess.Popen(["mlops", "tune", "--worker"], cwd=path, env=ENV, stderr=subprocess.PIPE)
        for _ in range(workers)
    ]
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(stderr.decode())
    url = f"sqlite:///{path / 'study.db'}"
    (name,) = optuna.get_all_study_names(url)
    done = optuna.load_study(study_name=name, storage=url).get_trials(states=(TrialState.COMPLETE,))
    start = min(t.datetime_start for t in done if t.datetime_start)
    end = max(t.datetime_complete for t in done if t.datetime_complete)
    window = (end - start).total_seconds()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return len(done), window, 60 * len(done) / window, cpu / len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit of each run")
    args = parser.parse_args()
    if not (ROOT / PATHS.train).is_file():
        raise SystemExit("missing data/split/train.parquet: run `dvc repro impute` first")
    print(machine())
    print(
        f"each run: tune.timeout {args.seconds:.0f} s, random sampler, no pruning, one core/fit\n"
    )
    print(f"{'workers':>7} {'trials':>7} {'seconds':>8} {'trials/min':>11} {'CPU s/trial':>12}")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            path = workspace(Path(tmp), args.seconds, f"w{workers}")
            trials, window, rate, cpu = trials_per_minute(path, workers)
            rates[workers] = rate
            print(f"{workers:7d} {trials:7d} {window:8.1f} {rate:11.1f} {cpu:12.2f}", flush=True)
    print(f"\nspeed-up of two workers: {rates[2] / rates[1]:.2f}x (target >= 1.7x on 2 free cores)")
    # Equal CPU per trial means sharing the study costs nothing: the speed-up is then
    # bounded only by how many cores are free.


if __name__ == "__main__":
    main()
