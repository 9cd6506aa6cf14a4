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
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlops
from mlops import io
from mlops.config import PATHS, Params
from mlops.errors import UsageError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from mlops.tuning import Callback

STUDY_DB = PATHS.tuning_dir / "study.db"
TRIALS_CSV = PATHS.tuning_dir / "trials.csv"
METRICS_JSON = PATHS.tuning_dir / "metrics.json"
# A worker that stops sending heartbeats for GRACE_SECONDS is presumed dead: its
# running trial is failed and queued once more, so no trial is lost.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 30
STORAGE_ATTEMPTS = 3


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    config, seed = params.tune, params.seed
    train = io.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    plan_document = io.read_json(PATHS.imputation, "imputation plan")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn and
    # Optuna are slow. The search space is checked after: that check is tuning's.
    from threadpoolctl import threadpool_limits

    from mlops import tuning
    from mlops.imputation import ImputationPlan

    tuning.check_space(config, str(args.params))
    plan = ImputationPlan.from_dict(plan_document)
    sample = tuning.sample_rows(train, plan.target, config.max_rows, seed)
    folds = tuning.make_folds(sample[plan.target], config.cv_folds, seed, str(args.params))
    study = _open_study(params, args.params, _inputs())
    worker = bool(getattr(args, "worker", False))
    objective = tuning.make_objective(
        sample, plan, config, folds, seed=seed, worker=f"{socket.gethostname()}:{os.getpid()}"
    )
    # One thread per fit: scale-out is by trials (workers), and OpenMP threads that
    # busy-wait on a shared, busy machine make a fit many times slower, not faster.
    with _progress(study, config.n_trials) as on_trial, threadpool_limits(limits=1):
        stopped_by = tuning.optimise(
            study,
            objective,
            config,
            seed=seed,
            salt=_salt() if worker else None,
            callbacks=[on_trial],
        )
    best = tuning.best_result(study, config, stopped_by)
    _summary(study, best, worker)
    if not worker:
        _write_outputs(study, best)


def _inputs() -> dict[str, str]:
    """Hashes of what shapes a trial's result besides params: data, code, libraries."""
    versions = io.library_versions()
    return {
        "train": io.file_md5(PATHS.train),
        "plan": io.file_md5(PATHS.imputation),
        # Every module of the package, not only those tuning imports today: a stale
        # study is worse than a fresh one.
        "code": _package_md5(),
        **{lib: versions[lib] for lib in ("scikit-learn", "numpy", "optuna")},
    }


def _package_md5() -> str:
    package = Path(str(mlops.__file__)).parent
    sources = sorted(package.rglob("*.py"))
    listing = "".join(f"{p.relative_to(package)}:{io.file_md5(p)}\n" for p in sources)
    return hashlib.md5(listing.encode(), usedforsecurity=False).hexdigest()


def _open_study(params: Params, source: Path, inputs: dict[str, str]) -> optuna.Study:
    import optuna

    from mlops import tuning

    config = params.tune
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _open_storage(config.storage, source)
    return optuna.create_study(
        study_name=tuning.study_name(config, params.seed, inputs),
        storage=storage,
        direction=config.direction,
        sampler=tuning.make_sampler(config, params.seed),
        pruner=tuning.make_pruner(config),
        load_if_exists=True,
    )


def _open_storage(url: str | None, source: Path) -> optuna.storages.RDBStorage:
    """The study database; one line naming ``tune.storage`` if it cannot be opened."""
    import sqlalchemy

    if url is None:
        STUDY_DB.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{STUDY_DB}"
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the locked driver is psycopg2.
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _rdb_storage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # Workers starting together on an empty database race to create its
            # tables; the loser finds them on the next attempt.
            if attempt == STORAGE_ATTEMPTS - 1:
                raise _storage_error(url, exc, source) from None
            time.sleep(1.0 + attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise _storage_error(url, exc, source) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        # Heartbeats are marked experimental, yet they are how a dead worker's trial
        # is noticed and run again.
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=_engine_kwargs(url),
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )


def _storage_error(url: str, exc: Exception, source: Path) -> UsageError:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UsageError(f"{source}: tune.storage: cannot open {_hide_password(url)} ({detail})")


def _engine_kwargs(url: str) -> dict[str, object]:
    # Wait for a lock instead of failing when local workers share one SQLite file,
    # and give up on an unreachable server in seconds rather than minutes.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def _hide_password(url: str) -> str:
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)


def _salt() -> int:
    """Sets a worker's sampler seeds apart from every other worker's."""
    return (os.getpid() << 32) ^ time.time_ns()


@contextmanager
def _progress(study: optuna.Study, n_trials: int) -> Iterator[Callback]:
    """A progress bar over the study's whole budget (resumed and other workers' trials too)."""
    from tqdm import tqdm

    from mlops import tuning

    done = tuning.budget_used(study.get_trials(deepcopy=False))
    bar = tqdm(total=n_trials, initial=min(done, n_trials), desc="tune", unit="trial", disable=None)

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        bar.n = min(tuning.budget_used(trials), n_trials)
        best = tuning.best_trial(trials, study.direction.name.lower())
        bar.set_postfix_str(f"best {best.value:.4f}" if best and best.value else "", refresh=False)
        bar.refresh()

    try:
        yield on_trial
    finally:
        bar.close()


def _summary(study: optuna.Study, best: dict[str, Any], worker: bool) -> None:
    from mlops import tuning

    metrics = tuning.tuning_metrics(study.get_trials(deepcopy=False), best["direction"])
    role = "worker: " if worker else ""
    print(
        f"mlops tune: {role}study {study.study_name}: {metrics['trials']} trials "
        f"({metrics['pruned']} pruned, {metrics['failed']} failed), stopped by "
        f"{best['stopped_by']}; best {best['metric']} {best['cv_score']} "
        f"({best['family']}, trial {best['trial']})",
        file=sys.stderr,
    )


def _write_outputs(study: optuna.Study, best: dict[str, Any]) -> None:
    """Everything is computed first, then written, so a failure leaves no partial outputs."""
    from mlops import tuning

    trials = study.get_trials(deepcopy=False)
    table = tuning.trials_table(trials, best["direction"])
    metrics = tuning.tuning_metrics(trials, best["direction"])
    pngs = tuning.plot_pngs(study, best["family"], best["metric"])
    io.write_csv(TRIALS_CSV, table)
    io.write_json(METRICS_JSON, metrics)
    for name, png in pngs.items():
        io.write_bytes(PATHS.tuning_dir / f"{name}.png", png)
    io.write_json(PATHS.best_params, best)
