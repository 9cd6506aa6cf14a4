"""Ctrl-C during a tune lands in a trial's objective, where Optuna records the trial."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

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


def interrupted_while_waiting(interrupts: int, patience: float) -> None:
    with _interrupts_inside_trials(lambda t: 0.0, patience=patience):
        for _ in range(interrupts):
            interrupt()
        time.sleep(10)  # no trial follows: e.g. waiting for other workers' trials


def test_an_interrupt_held_with_no_trial_to_follow_comes_within_the_patience() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted_while_waiting(1, patience=0.2)
    assert time.monotonic() - start < 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_interrupt_is_not_held() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted_while_waiting(2, patience=30)
    assert time.monotonic() - start < 5


def test_a_process_that_ignores_interrupts_keeps_ignoring_them() -> None:
    def objective(trial: Any) -> float:
        return 0.0

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with _interrupts_inside_trials(objective) as (guarded, _):
        interrupt()
        assert guarded is objective
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
