"""Ctrl-C during a tune lands in a trial's objective, where Optuna records the trial."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from mlops.io import studydb
from mlops.stages.tune import _interrupts_inside_trials

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def interactive() -> Iterator[None]:
    """Ctrl-C as in a terminal: a background job (CI's, for one) starts with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs here, in the main thread


class InterruptedWhileSampling(optuna.samplers.RandomSampler):
    """Ctrl-C after Optuna created trial 1 and before its objective (during ``ask``)."""

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        if trial.number == 1:
            interrupt()


def test_an_interrupt_while_optuna_creates_a_trial_fails_that_trial_not_leaves_it_running() -> None:
    study = optuna.create_study(sampler=InterruptedWhileSampling(seed=0))
    with (
        pytest.raises(KeyboardInterrupt),
        _interrupts_inside_trials(lambda trial: trial.suggest_float("x", 0, 1)) as (guarded, after),
    ):
        study.optimize(guarded, n_trials=3, callbacks=[after])
    # Unguarded, trial 1 stays RUNNING: a resumed run would count it as done.
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]


def test_an_interrupt_inside_the_objective_stops_it_at_once() -> None:
    reached = []

    def objective(trial: Any) -> float:
        interrupt()
        reached.append(trial)
        return 0.0

    with pytest.raises(KeyboardInterrupt), _interrupts_inside_trials(objective) as (guarded, _):
        guarded(None)
    assert reached == []


def interrupted_while_waiting(interrupts: int) -> None:
    with _interrupts_inside_trials(lambda t: 0.0):
        for _ in range(interrupts):
            interrupt()
        time.sleep(10)  # no trial follows: e.g. waiting for other workers' trials


def test_an_interrupt_with_no_trial_to_follow_is_not_held() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted_while_waiting(1)
    assert time.monotonic() - start < 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_interrupt_is_not_held() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted_while_waiting(2)
    assert time.monotonic() - start < 5


def test_an_interrupt_during_a_trials_database_write_waits_for_the_commit(
    tmp_path: Path,
) -> None:
    # Raised mid-write, the interrupt left the connection holding SQLite's lock: the
    # trial's own FAIL record then waited out the timeout ("database is locked").
    database = tmp_path / "study.db"
    storage = studydb.open_storage(None, database, Path("params.yaml"))
    study = optuna.create_study(storage=storage)
    armed = []

    def interrupt_mid_write(*args: Any) -> None:
        if armed:  # in SQLAlchemy's execute, before the statement runs and commits
            armed.clear()
            interrupt()

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", interrupt_mid_write)

    def objective(trial: optuna.Trial) -> float:
        armed.append(True)
        trial.set_user_attr("reached", True)
        time.sleep(10)  # the held interrupt comes here, once the write is committed
        return 0.0

    start = time.monotonic()
    with (
        pytest.raises(KeyboardInterrupt),
        _interrupts_inside_trials(objective) as (guarded, after),
    ):
        study.optimize(guarded, n_trials=1, callbacks=[after])
    assert time.monotonic() - start < 5
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs == {"reached": True}
    with contextlib.closing(sqlite3.connect(database, timeout=0)) as connection:
        connection.execute("BEGIN IMMEDIATE")  # nobody holds the database's lock


def test_a_process_that_ignores_interrupts_keeps_ignoring_them() -> None:
    def objective(trial: Any) -> float:
        return 0.0

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with _interrupts_inside_trials(objective) as (guarded, _):
        interrupt()
        assert guarded is objective
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
