"""What keeping each feature costs: the latency and model bytes it adds, and what
acquiring it costs (declared in the contract).

The cheap probe of mlops.data.importance (encoder and gradient boosting, the
family's small fixed settings) is fitted on a seeded sample of the training split
with every feature, then once without each feature; a feature's cost is what the
model loses when it is left out: the fastest single-row prediction time and the
serialised (skops) size. The tuned model is not known yet at validate, so the
figures are the probe's: they rank features, they do not promise production
latencies. Latencies are CPU time, measured: they vary a little from run to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlops.config import CostConfig
from mlops.data.importance import probe
from mlops.tasks.task import get_task


@dataclass(frozen=True)
class Footprint:
    """One fitted probe: fastest single-row prediction (CPU time) and serialised size."""

    latency_us: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The figures every run repeats (the latency is measured: see ``cost_latencies``)."""
        return _untimed(asdict(self))


@dataclass(frozen=True)
class Cost:
    """What leaving one feature out saves (positive: the feature costs that much)."""

    latency_us: float
    bytes: int
    acquisition: float | None  # data/schema.yaml metadata.cost, in the team's unit

    def to_dict(self) -> dict[str, Any]:
        """The figures every run repeats (the latency is measured: see ``cost_latencies``)."""
        return _untimed(asdict(self))


def _untimed(figures: dict[str, Any]) -> dict[str, Any]:
    """Without the latency: a tracked report (validation.json, which impute reads) must
    have the same bytes when the data did not change."""
    return {key: value for key, value in figures.items() if key != "latency_us"}


def measure(
    train: pd.DataFrame,
    features: Sequence[str],
    target: str,
    config: CostConfig,
    acquisition: Mapping[str, float | None],
    *,
    seed: int,
    task_name: str,
    measured: Sequence[str] | None = None,
    clock: Callable[[], int] = time.thread_time_ns,
) -> tuple[Footprint, dict[str, Cost]]:
    """The probe's footprint with every feature, and the cost of each feature of
    ``measured`` (default: every one), each a refit without it.

    One thread throughout, timed by that thread's CPU clock: a single-row request is
    served on one thread, and what a feature adds is the work done for it. The models
    take turns on each row, and each keeps its fastest time: on a shared machine (a CI
    runner) other processes only ever add time, and they add it to every model alike.
    """
    task = get_task(task_name)
    sample = task.sample(train, target, config.fit_rows, seed)
    rows = sample.sample(min(config.timed_rows, len(sample)), random_state=seed)
    subsets = {None: list(features)} | {
        name: [f for f in features if f != name]
        for name in (features if measured is None else measured)
    }
    with threadpool_limits(limits=1):
        models = {
            left_out: _fit(sample, subset, target, task_name, seed)
            for left_out, subset in subsets.items()
        }
        fastest = _fastest(models, subsets, rows, clock)
    footprints = {
        left_out: Footprint(round(fastest[left_out] / 1000, 1), len(sio.dumps(model)))
        for left_out, model in models.items()
    }
    full = footprints.pop(None)
    costs = {
        str(name): Cost(
            latency_us=round(full.latency_us - without.latency_us, 1),
            bytes=full.bytes - without.bytes,
            acquisition=acquisition.get(str(name)),
        )
        for name, without in footprints.items()
    }
    return full, costs


def _fit(sample: pd.DataFrame, features: list[str], target: str, task: str, seed: int) -> Pipeline:
    """The probe on ``features``; on none (the cost of a data set's only feature), the
    task's trivial model, which is what is left without it."""
    if not features:
        trivial = Pipeline([("model", get_task(task).dummy())])
        return trivial.fit(sample[features], sample[target])
    encoder, model = probe(sample[features], get_task(task), seed)
    return Pipeline([("encode", encoder), ("model", model)]).fit(sample[features], sample[target])


def _fastest(
    models: Mapping[str | None, Pipeline],
    subsets: Mapping[str | None, list[str]],
    rows: pd.DataFrame,
    clock: Callable[[], int],
) -> dict[str | None, int]:
    """Each model's fastest single-row prediction (ns), the models taking turns per row."""
    fastest: dict[str | None, int] = {}
    for i in range(len(rows)):
        for key, model in models.items():
            row = rows.iloc[[i]][subsets[key]]
            if i == 0:
                model.predict(row)  # the first call warms caches up: not timed
            start = clock()
            model.predict(row)
            elapsed = clock() - start
            fastest[key] = min(elapsed, fastest.get(key, elapsed))
    return fastest
