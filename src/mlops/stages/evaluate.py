"""Stage ``evaluate``: judge the model on the held-out split -> metrics, details, plots.

Writes reports/metrics.json (flat numbers for `dvc metrics diff`),
reports/evaluation.json (baselines, slices, business value, importance, parity
across the protected attributes' groups (validate.protected) and proxies for
them, the metric's decay with the data's age, with the reason for anything not
available) and reports/plots/ (CSV for DVC plots,
PNG for people; which ones depends on data.task, so the folder is the stage's
output and holds only this run's files).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import PATHS, EvaluateConfig, Params
from mlops.errors import UsageError
from mlops.io import files, modelfile

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = "score the model on the test split -> reports/metrics.json, reports/plots/"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    test = files.read_parquet(PATHS.test, "test split (run `dvc repro split`)")
    plan_document = files.read_json(PATHS.imputation, "imputation plan")
    # Absent before the first tune, or from a tuner that keeps no table: reported, not fatal.
    trials = files.read_csv(PATHS.trials, "tuning trials") if PATHS.trials.is_file() else None
    config = evaluate_config(params, list(test.columns))
    stream = read_stream(params, config)
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn and
    # matplotlib are slow. The model file is checked after: skops needs its types.
    from mlops.data.splitting import fitting_rows
    from mlops.evaluation import charts
    from mlops.evaluation.report import evaluate
    from mlops.features.imputation import ImputationPlan
    from mlops.features.pipeline import TRUSTED_TYPES
    from mlops.tasks.task import get_task

    plan = ImputationPlan.from_dict(plan_document)
    model = modelfile.load_verified(PATHS.model, TRUSTED_TYPES, PATHS.dvc_lock)
    task = get_task(params.data.task)
    # The rows the model was fitted on, as train took them: its train score (overfitting)
    # and the baselines are measured on those.
    fitted = fitting_rows(train, plan.target, params.train.max_rows, params.seed, task.name)
    result = evaluate(
        model,
        fitted,
        test,
        plan=plan,
        task=task,
        config=config,
        tune=params.tune,
        seed=params.seed,
        trials=trials,
        protected=params.validate_.protected,
        stream=stream,
    )
    pictures = charts.render(result.tables, result.details)
    written = {f"{name}.csv" for name in result.tables} | {f"{name}.png" for name in pictures}
    # A run by hand after another task's (dvc repro empties the folder itself).
    stale = [PATHS.plots_dir / n for n in files.list_names(PATHS.plots_dir) if n not in written]
    files.remove_files(stale)
    for name, table in result.tables.items():
        files.write_csv(PATHS.plots_dir / f"{name}.csv", table)
    for name, png in pictures.items():
        files.write_bytes(PATHS.plots_dir / f"{name}.png", png)
    files.write_json(PATHS.evaluation, result.details)
    files.write_json(PATHS.metrics, result.metrics)


def evaluate_config(params: Params, columns: list[str]) -> EvaluateConfig:
    """params.yaml evaluate, its staleness measured along split.time when no other time
    column is named: a test split of the latest rows is what staleness needs."""
    from mlops.data.ingestion import time_column  # pandas: not at start-up (see mlops.cli)

    staleness = params.evaluate.staleness
    time = time_column(params, columns)
    if staleness.time_column is not None or time is None:
        return params.evaluate
    return params.evaluate.model_copy(
        update={"staleness": staleness.model_copy(update={"time_column": time})}
    )


def read_stream(params: Params, config: EvaluateConfig) -> pd.DataFrame | None:
    """The held-out rows replayed as later data (evaluate.staleness.stream), read and
    typed as ingest reads the source; None when a time column orders the test split,
    or no stream is set."""
    staleness = config.staleness
    if staleness.time_column is not None or staleness.stream is None:
        return None
    from mlops.data.ingestion import ingest  # pandas: not at start-up (see mlops.cli)
    from mlops.io import tables

    try:
        return ingest(tables.read_source(params.data, Path(staleness.stream)), params.data)
    except UsageError as exc:
        raise UsageError(
            f"params.yaml evaluate.staleness.stream {staleness.stream}: {exc} (the held-out "
            "rows must read as data.source does; null if you have none)"
        ) from None
