"""Stage ``tune``: an Optuna search on the training split -> models/best_params.json.

Also writes reports/tuning/: trials.csv (every trial), metrics.json (a DVC
metric: best score and budget used) and PNG plots.

The study lives in a database that is deliberately NOT a DVC output: DVC
deletes a stage's outputs before running it, which would throw away the trials
an interrupted run already paid for. The default is reports/tuning/study.db
(SQLite, git-ignored); ``tune.storage`` may name any database Optuna supports.
The study's name is a hash of everything that shapes a trial's result (tune
params except the stopping criteria, seed, data, code, library versions), so:
a rerun with the same inputs finds its finished study and writes the same
results (``dvc repro -f`` is byte-identical); a changed input starts a fresh
study; a raised ``n_trials`` or a rerun after an interruption continues
the study. ``mlops tune --worker`` joins the study from other processes or
machines, runs trials until the study is done and writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

import mlops
from mlops.config import PATHS
from mlops.io import files, modelfile, runs, studydb

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.trial import FrozenTrial

    from mlops.tuning.search import Callback, Objective

SUMMARY = "search hyperparameters with Optuna -> models/best_params.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--worker",
        action="store_true",
        help="join the study in tune.storage and run trials until it is done; "
        "write no outputs (start one per process or machine)",
    )


STUDY_DB = PATHS.tuning_dir / "study.db"
TRIALS_CSV = PATHS.tuning_dir / "trials.csv"
METRICS_JSON = PATHS.tuning_dir / "metrics.json"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    config, seed = params.tune, params.seed
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    plan_document = files.read_json(PATHS.imputation, "imputation plan")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn and
    # Optuna are slow. The search space is checked after: that check is tuning's.
    import optuna
    from threadpoolctl import threadpool_limits

    from mlops.data.ingestion import group_column, time_column
    from mlops.data.splitting import as_times
    from mlops.features.imputation import ImputationPlan
    from mlops.tasks.task import get_task
    from mlops.tuning import search

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    task = get_task(params.data.task)
    search.check_space(config, str(args.params), task.name)
    plan = ImputationPlan.from_dict(plan_document)
    sample = task.sample(train, plan.target, config.max_rows, seed, keep=config.cv_folds)
    groups = group_column(params, list(train.columns))
    time = time_column(params, list(train.columns))
    folds = task.folds(
        sample[plan.target],
        config.cv_folds,
        seed,
        f"{args.params}: tune.cv_folds",
        groups=None if groups is None else sample[groups],
        order=None if time is None else as_times(sample[time], "params.yaml split.time"),
    )
    storage = studydb.open_storage(config.storage, STUDY_DB, args.params)
    study = search.open_study(storage, config, seed, task.name, _inputs())
    dead = search.settle_dead_trials(study, socket.gethostname(), _alive)
    if dead:
        print(f"mlops tune: trials {dead} of a killed run failed; they run again", file=sys.stderr)
    worker = bool(getattr(args, "worker", False))
    objective = search.make_objective(
        sample,
        plan,
        config,
        folds,
        seed=seed,
        task=task.name,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    # One thread per fit: scale-out is by trials (workers), and OpenMP threads that
    # busy-wait on a shared, busy machine make a fit many times slower, not faster.
    with (
        _progress(study, config.n_trials) as on_trial,
        _interrupts_inside_trials(objective) as (guarded, after_trial),
        threadpool_limits(limits=1),
    ):
        stopped_by = search.optimise(
            study,
            guarded,
            config,
            seed=seed,
            salt=_salt() if worker else None,
            callbacks=[on_trial, after_trial],
            start_points=search.starting_points(config, task.name),
        )
    # Outputs describe the search, not this run: interrupted trials are left out.
    counted = search.counted_study(study)
    best = search.best_result(counted, config, stopped_by)
    trials = counted.get_trials(deepcopy=False)
    metrics = search.tuning_metrics(trials, best["direction"])
    _summary(study.study_name, metrics, best, worker)
    if not worker:  # everything is computed before the first write: no partial outputs
        table = search.trials_table(trials, best["direction"])
        pngs = search.plot_pngs(counted, best["family"], best["metric"])
        _write_outputs(table, metrics, pngs, best)
        durations = search.trial_durations(study.get_trials(deepcopy=False))
        runs.record_run("tune", {"study": study.study_name, **durations})


def _inputs() -> dict[str, str]:
    """Hashes of what shapes a trial's result besides params: data, code, libraries."""
    versions = modelfile.library_versions()
    return {
        "train": files.file_md5(PATHS.train),
        "plan": files.file_md5(PATHS.imputation),
        # Every module of the package, not only those tuning imports today: a stale
        # study is worse than a fresh one.
        "code": _package_md5(),
        **{lib: versions[lib] for lib in ("scikit-learn", "numpy", "optuna")},
    }


def _package_md5() -> str:
    package = Path(str(mlops.__file__)).parent
    sources = sorted(package.rglob("*.py"))
    listing = "".join(f"{p.relative_to(package)}:{files.file_md5(p)}\n" for p in sources)
    return hashlib.md5(listing.encode(), usedforsecurity=False).hexdigest()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _salt() -> int:
    """Sets a worker's sampler seeds apart from every other worker's."""
    return (os.getpid() << 32) ^ time.time_ns()


@contextmanager
def _progress(study: optuna.Study, n_trials: int) -> Iterator[Callback]:
    """A progress bar over the study's whole budget (resumed and other workers' trials too)."""
    from tqdm import tqdm

    from mlops.tuning import search

    done = search.budget_used(study.get_trials(deepcopy=False))
    bar = tqdm(total=n_trials, initial=min(done, n_trials), desc="tune", unit="trial", disable=None)

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        bar.n = min(search.budget_used(trials), n_trials)
        best = search.best_trial(trials, study.direction.name.lower())
        bar.set_postfix_str(f"best {best.value:.4f}" if best and best.value else "", refresh=False)
        bar.refresh()

    try:
        yield on_trial
    finally:
        bar.close()


# Code an interrupt must not cut in two: Optuna's bookkeeping and its database. A
# KeyboardInterrupt raised between a write and its commit can leave the connection
# holding the database's lock, and the trial's own record then waits on it in vain.
_BOOKKEEPING = frozenset({"optuna", "sqlalchemy"})
RECHECK_SECONDS = 0.05


def _in_bookkeeping(frame: FrameType | None, objective: CodeType) -> bool:
    """Whether the main thread, stopped at ``frame``, is running Optuna's or its
    database's code; inside the objective, only the frames above it count."""
    while frame is not None and frame.f_code is not objective:
        if str(frame.f_globals.get("__name__", "")).partition(".")[0] in _BOOKKEEPING:
            return True
        frame = frame.f_back
    return False


@contextmanager
def _interrupts_inside_trials(objective: Objective) -> Iterator[tuple[Objective, Callback]]:
    """Ctrl-C stops the search at a point where Optuna can record it, never in the middle
    of Optuna's bookkeeping or a database write.

    Optuna records a trial interrupted in its objective as failed, and a resumed run
    draws it again. Between objectives Optuna creates, samples and records trials; an
    interrupt there left a trial RUNNING, which a resumed run counted as used and
    retried only once its heartbeat went stale. So an interrupt that lands in Optuna's
    or SQLAlchemy's code (between trials, or in a trial's own report to the study) is
    held: it is raised as the next objective starts or the trial's callbacks run, or
    where the main thread is next found in other code (looked at every
    ``RECHECK_SECONDS``: e.g. while the search waits for other workers' trials). A
    second Ctrl-C is not held. Off the main thread, without SIGALRM, or when the
    process ignores SIGINT (started in the background), nothing changes.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield objective, lambda study, trial: None
        return
    pending = False

    def guarded(trial: optuna.Trial) -> float:
        if pending:
            raise KeyboardInterrupt
        return objective(trial)

    def deliver(frame: FrameType | None) -> None:
        if _in_bookkeeping(frame, guarded.__code__):
            signal.setitimer(signal.ITIMER_REAL, RECHECK_SECONDS)
        else:
            raise KeyboardInterrupt

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal pending
        if pending:
            raise KeyboardInterrupt
        pending = True
        deliver(frame)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if pending:
            deliver(frame)

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if pending:
            raise KeyboardInterrupt

    previous = (
        signal.signal(signal.SIGINT, on_interrupt),
        signal.signal(signal.SIGALRM, on_alarm),
    )
    try:
        yield guarded, after_trial
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGALRM, previous[1])
    if pending:  # held, and the search ended before it was raised
        raise KeyboardInterrupt


def _summary(name: str, metrics: dict[str, Any], best: dict[str, Any], worker: bool) -> None:
    role = "worker: " if worker else ""
    print(
        f"mlops tune: {role}study {name}: {metrics['trials']} trials "
        f"({metrics['pruned']} pruned, {metrics['failed']} failed), stopped by "
        f"{best['stopped_by']}; best {best['metric']} {best['cv_score']} "
        f"({best['family']}, trial {best['trial']})",
        file=sys.stderr,
    )


def _write_outputs(
    table: pd.DataFrame, metrics: dict[str, Any], pngs: dict[str, bytes], best: dict[str, Any]
) -> None:
    files.write_csv(TRIALS_CSV, table)
    files.write_json(METRICS_JSON, metrics)
    for name, png in pngs.items():
        files.write_bytes(PATHS.tuning_dir / f"{name}.png", png)
    files.write_json(PATHS.best_params, best)
