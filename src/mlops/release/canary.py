"""The canary: a candidate model on production's recent inputs, before it is promoted.

The gate judges a candidate on the test split; the canary asks what it would do
on the rows production actually sees. Three checks on the last logged rows of
the production model: every answer is finite (a model that answers NaN on real
inputs must never reach production), the candidate mostly agrees with what
production answered (the share of the same class; for numbers, the correlation
of the values), and a single-row prediction takes no more than a multiple of
production's own time on the same rows. The checks are pure; the caller reads
the log and times the models (``single_row_ms``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import PATHS, CanaryConfig, Params
from mlops.errors import UsageError
from mlops.io import files, modelfile, runs
from mlops.monitoring.logs import META, REFUSED, VERSION, Window, read_window
from mlops.monitoring.reference import single_row_latencies, single_row_latency
from mlops.release.manifest import read_production
from mlops.serving import service
from mlops.serving.production import load_manifest_model, read_contract
from mlops.tasks.families import trusted_types
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import Task, get_task


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    summary: str  # one line: what was checked, and what failed


def _finite(task: Task, prediction: Prediction) -> bool:
    """The numbers a prediction rests on: probabilities (classification), else values."""
    numbers = prediction.proba if task.is_classification else prediction.value
    return bool(np.isfinite(np.asarray(numbers, dtype=float)).all())


def agreement(task: Task, candidate: Prediction, production: Prediction) -> float:
    """The share of rows given the same class, or (regression) the correlation of the
    values (1.0 when both are the same constant)."""
    if task.is_classification:
        same = (
            pd.Series(candidate.label).astype(str).to_numpy()
            == pd.Series(production.label).astype(str).to_numpy()
        )
        return float(same.mean())
    mine, theirs = np.asarray(candidate.value, float), np.asarray(production.value, float)
    if np.allclose(mine, theirs):
        return 1.0
    if np.ptp(mine) == 0 or np.ptp(theirs) == 0:
        return 0.0
    return float(np.corrcoef(mine, theirs)[0, 1])


def judge(
    task: Task,
    candidate: Prediction,
    production: Prediction,
    latency_ms: tuple[float, float],
    config: CanaryConfig,
) -> CanaryResult:
    """The three checks on ``candidate``'s answers to the rows ``production`` answered;
    ``latency_ms``: (candidate, production) median single-row times."""
    rows = len(candidate.label)
    failures: list[str] = []
    if not _finite(task, candidate):
        failures.append("it answers NaN or infinity")
    agreed = agreement(task, candidate, production) if not failures else 0.0
    if not np.isfinite(agreed) or agreed < config.min_agreement:
        what = "the same class" if task.is_classification else "correlation"
        failures.append(f"agreement with production {agreed:.2f} ({what}) < {config.min_agreement}")
    mine, theirs = latency_ms
    ratio = mine / theirs if theirs > 0 else 1.0
    if ratio > config.max_latency_ratio:
        failures.append(
            f"single-row latency {mine:.2f} ms is {ratio:.1f}x production's {theirs:.2f} ms "
            f"(limit {config.max_latency_ratio:g}x)"
        )
    checked = f"canary on the last {rows} logged rows"
    if failures:
        return CanaryResult(False, f"{checked}: {'; '.join(failures)}")
    return CanaryResult(
        True, f"{checked}: finite, agreement {agreed:.2f}, latency {ratio:.1f}x production's"
    )


def single_row_ms(
    task: Task,
    threshold: float,
    candidate: tuple[Any, pd.DataFrame],
    production: tuple[Any, pd.DataFrame],
) -> tuple[float, float]:
    """The median times in ms of predicting one row at a time (what serving does), of
    (model, features) ``candidate`` and ``production`` timed in turn on the same rows, so
    that a burst of other work on the machine weighs on both alike."""
    timed = [
        (partial(task.predict, model, threshold=threshold), x)
        for model, x in (candidate, production)
    ]
    mine, theirs = single_row_latencies(timed, limit=len(candidate[1]))
    return mine["p50"], theirs["p50"]


def baseline_latency(params: Params, model_path: Path) -> dict[str, float] | None:
    """The model file's own single-row predict time {"p50", "p95", "rows"} (ms), for the
    production manifest: the profile stage's measurement of these bytes on this machine
    when there is one, else timed now on the test split; None when neither is at hand."""
    measured = runs.profiled_latency(files.file_md5(model_path))
    if measured is not None or not PATHS.test.is_file():
        return measured
    model = modelfile.load(model_path, trusted_types())
    features = service.model_features(model, read_contract(params).schema, str(model_path))
    rows = files.read_parquet(PATHS.test, "test split")[list(features)]
    task = get_task(params.data.task)
    threshold = params.evaluate.threshold
    return single_row_latency(partial(task.predict, model, threshold=threshold), rows)


# --- the run: the log, the two models ------------------------------------------------


def run(params: Params, candidate_path: Path) -> CanaryResult | None:
    """The canary of the model file ``candidate_path`` against production; None (nothing
    to check against) when no model is in production or it has no logged answers yet."""
    manifest = read_production()
    if manifest is None:
        return None
    contract = read_contract(params)
    sources = newest_logs(Path(params.serve.log_dir), params.respond.canary.rows)
    outputs = logged_outputs(sources, manifest.version)
    if outputs is None:
        return None
    production = load_manifest_model(manifest, params, contract.schema)
    candidate = modelfile.load(candidate_path, trusted_types())
    try:
        features = service.model_features(candidate, contract.schema, str(candidate_path))
    except ValueError as exc:
        return CanaryResult(False, f"canary: {exc}")
    wanted = list(dict.fromkeys([*production.features, *features]))
    window = Window(last=params.respond.canary.rows, version=manifest.version)
    try:
        logged = read_window(sources, wanted, outputs, window)
    except UsageError:
        return None  # no usable logged rows of this version: nothing to compare with
    task, threshold = production.task, production.threshold
    try:
        answered = task.from_columns({name: logged.outputs[name] for name in outputs})
    except (KeyError, ValueError):
        return CanaryResult(False, f"canary: production's logged answers are not {task.name}'s")
    inputs = logged.inputs
    timed = inputs.iloc[-params.respond.canary.latency_rows :]
    latency = single_row_ms(
        task,
        threshold,
        (candidate, timed[list(features)]),
        (production.model, timed[list(production.features)]),
    )
    mine = task.predict(candidate, inputs[list(features)], threshold)
    return judge(task, mine, answered, latency, params.respond.canary)


def newest_logs(folder: Path, rows: int | None = None) -> list[tuple[str, bytes]]:
    """The newest day files of the prediction log, oldest first, enough for ``rows``
    answered rows (twice that in lines, for other versions and refusals; None: all)."""
    chosen: list[tuple[str, bytes]] = []
    lines = 0
    for name in reversed(files.list_names(folder)):
        if not name.endswith(".jsonl"):
            continue
        data = (folder / name).read_bytes()
        chosen.insert(0, (name, data))
        lines += data.count(b"\n")
        if rows is not None and lines >= 2 * rows:
            break
    return chosen


def logged_outputs(sources: list[tuple[str, bytes]], version: str) -> list[str] | None:
    """The output columns of ``version``'s newest answered row (None: no such row)."""
    for _, data in reversed(sources):
        for line in reversed(data.splitlines()):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get(VERSION) == version:
                if record.get(REFUSED) is True:
                    continue
                return [str(k) for k in record if k not in META]
    return None
