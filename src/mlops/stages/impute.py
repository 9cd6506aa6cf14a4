"""Stage ``impute``: decide every feature's fate and fit its imputation -> models/imputation.json.

``mlops impute`` plans from the training split and the quality findings in
reports/validation.json; features below the QA threshold are imputed, dropped
or stop the pipeline, by ``impute.policy``. ``mlops impute --input FILE``
reports which features the model will impute in a batch, and how often.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import PATHS, Params
from mlops.errors import CheckFailed
from mlops.io import files, tables

if TYPE_CHECKING:
    from mlops.features.imputation import ImputationPlan


SUMMARY = "decide and fit each feature's imputation -> models/imputation.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        type=Path,
        help="report which features the model imputes in this CSV/Parquet batch instead",
    )
    parser.add_argument("--report", type=Path, help="write that report here as JSON")


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    if args.input is not None:
        _report_batch(args, params)
        return
    plan = _plan(params)
    files.write_json(PATHS.imputation, plan.to_dict())
    failed = [f for f in plan.features if f.decision == "fail"]
    if failed:
        names = ", ".join(f"{f.name} ({f.reason})" for f in failed)
        raise CheckFailed(f"{len(failed)} feature(s) below the QA threshold stop the run: {names}")
    print(_summary(plan))


def _plan(params: Params) -> ImputationPlan:
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    report = files.read_json(PATHS.validation, "validation report (run `dvc repro validate`)")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.data.ingestion import group_column, normalise_name, time_column
    from mlops.data.splitting import as_times
    from mlops.features.imputation import cv_scorer, plan_imputation, read_quality
    from mlops.features.pipeline import build_pipeline

    target = normalise_name(params.data.target)
    quality = read_quality(report, list(train.columns), target)
    auto = params.impute.auto
    # The reference model: the family's scikit-learn defaults, for the task at hand.
    task = params.data.task
    time = time_column(params, list(train.columns))
    score, rows = cv_scorer(
        train,
        target,
        partial(build_pipeline, family=auto.family, params={}, seed=params.seed, task=task),
        task=task,
        metric=params.tune.metric,
        folds=auto.cv_folds,
        max_rows=auto.max_rows,
        seed=params.seed,
        groups=group_column(params, list(train.columns)),
        times=None if time is None else as_times(train[time], "params.yaml split.time"),
    )
    scored_as = {
        "metric": params.tune.metric,
        "family": auto.family,
        "rows": rows,
        "folds": auto.cv_folds,
    }
    return plan_imputation(
        train, target, quality, params.impute, seed=params.seed, score=score, scored_as=scored_as
    )


def _summary(plan: ImputationPlan) -> str:
    imputed = [
        f"{f.name} {f.missing_rate:.1%} ({f.strategy})" for f in plan.used() if f.missing_rate
    ]
    dropped = plan.decided("drop")
    return (
        f"{len(plan.names())} features: {len(imputed)} imputed in training "
        f"[{', '.join(imputed)}], {len(dropped)} dropped {dropped}"
    )


def _report_batch(args: argparse.Namespace, params: Params) -> None:
    plan_document = files.read_json(PATHS.imputation, "imputation plan")
    from mlops.data.ingestion import csv_layout, ingest

    # The plan's column names tell a header row from data (before the plan is parsed).
    features = plan_document.get("features", []) if isinstance(plan_document, dict) else []
    known = [str(f.get("name")) for f in features if isinstance(f, dict)]
    source = tables.read_input(args.input, params.data, csv_layout(params.data, known))
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.features.imputation import ImputationPlan, describe_counts, imputation_counts

    plan = ImputationPlan.from_dict(plan_document)
    batch = ingest(source, params.data, require_target=False)
    counts = imputation_counts(batch, plan)
    if args.report is not None:
        files.write_json(args.report, counts)
    print(describe_counts(counts))
