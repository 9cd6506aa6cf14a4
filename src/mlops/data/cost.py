"""What keeping each feature costs: the latency and model bytes it adds, and what
acquiring it costs (declared in the contract).

The cheap probe of mlops.data.importance (encoder and gradient boosting, the
family's small fixed settings) is fitted on a seeded sample of the training split
with every feature, then once without each feature; a feature's cost is what the
model loses when it is left out: the median single-row prediction time and the
serialised (skops) size. The tuned model is not known yet at validate, so the
figures are the probe's: they rank features, they do not promise production
latencies. Latencies are wall-clock measurements, so they vary from run to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlops.config import CostConfig
from mlops.data.importance import probe
from mlops.tasks.task import get_task


@dataclass(frozen=True)
class Footprint:
    """One fitted probe: median single-row prediction time and serialised size."""

    latency_us: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Cost:
    """What leaving one feature out saves (positive: the feature costs that much)."""

    latency_us: float
    bytes: int
    acquisition: float | None  # data/schema.yaml metadata.cost, in the team's unit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    train: pd.DataFrame,
    features: Sequence[str],
    target: str,
    config: CostConfig,
    acquisition: Mapping[str, float | None],
    *,
    seed: int,
    task_name: str,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[Footprint, dict[str, Cost]]:
    """The probe's footprint with every feature, and each feature's cost.

    One thread throughout: a single-row request is served on one, and on a shared
    machine a thread pool's start-up and waits would drown the difference measured.
    """
    task = get_task(task_name)
    sample = task.sample(train, target, config.fit_rows, seed)
    rows = sample.sample(min(config.timed_rows, len(sample)), random_state=seed)
    fit = partial(
        _footprint, sample, rows, target=target, task_name=task_name, seed=seed, clock=clock
    )
    with threadpool_limits(limits=1):
        full = fit(list(features))
        footprints = {name: fit([f for f in features if f != name]) for name in features}
    costs = {}
    for name, without in footprints.items():
        costs[name] = Cost(
            latency_us=round(full.latency_us - without.latency_us, 1),
            bytes=full.bytes - without.bytes,
            acquisition=acquisition.get(name),
        )
    return full, costs


def _footprint(
    sample: pd.DataFrame,
    rows: pd.DataFrame,
    features: list[str],
    *,
    target: str,
    task_name: str,
    seed: int,
    clock: Callable[[], int],
) -> Footprint:
    encoder, model = probe(sample[features], get_task(task_name), seed)
    pipeline = Pipeline([("encode", encoder), ("model", model)]).fit(
        sample[features], sample[target]
    )
    pipeline.predict(rows.iloc[[0]][features])  # the first call warms caches up: not timed
    times = []
    for i in range(len(rows)):
        row = rows.iloc[[i]][features]
        start = clock()
        pipeline.predict(row)
        times.append(clock() - start)
    return Footprint(
        latency_us=round(float(np.median(times)) / 1000, 1), bytes=len(sio.dumps(pipeline))
    )
