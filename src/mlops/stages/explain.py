"""Command ``explain``: trace one example through every step of the model pipeline.

``mlops explain --row N`` explains row N (from 0) of the test split;
``mlops explain --input FILE --row N`` a row of any CSV (gzipped or not) or
Parquet file, its separator and header sniffed, else read as params.yaml
`data` describes (the target is optional there). What it follows is the task's
(params.yaml ``data.task``): binary, the probability of the positive class;
multiclass, the probability of the predicted class; regression, the predicted
value. Not a DVC stage: a debugging tool that reads the pipeline's outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops.config import PATHS
from mlops.errors import UsageError
from mlops.io import files, modelfile, tables

SUMMARY = "trace one example through every step of the model pipeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--row", type=int, default=0, help="row number, from 0 (default: %(default)s)"
    )
    parser.add_argument(
        "--input", type=Path, help="a CSV/Parquet file to explain (default: the test split)"
    )
    parser.add_argument(
        "--top", type=int, default=5, help="how many moving features to show (default: 5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a positive number of features")
    if args.input is None:
        frame, source = (
            files.read_parquet(PATHS.test, "test split (run `dvc repro split`)"),
            PATHS.test,
        )
    else:
        from mlops.data.ingestion import csv_layout, ingest

        source_frame = tables.read_input(args.input, params.data, csv_layout(params.data))
        frame = ingest(source_frame, params.data, require_target=False)
        source = args.input
    if not 0 <= args.row < len(frame):
        raise UsageError(f"--row {args.row}: {source} has rows 0 to {len(frame) - 1}")
    # Imported once params, arguments and inputs are checked (see mlops.cli):
    # scikit-learn is slow.
    from mlops.data.ingestion import normalise_name
    from mlops.evaluation.explaining import explain, reference_values, render
    from mlops.features.pipeline import TRUSTED_TYPES
    from mlops.serving.service import check_task
    from mlops.tasks.task import get_task

    model = modelfile.load_verified(PATHS.model, TRUSTED_TYPES, PATHS.dvc_lock)
    task = get_task(params.data.task)
    try:
        check_task(model, task, str(PATHS.model), "retrain it for this task (`dvc repro`)")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    features = list(model.feature_names_in_)
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise UsageError(
            f"{source}: missing feature column(s) the model reads: {', '.join(missing)}"
        )
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    explanation = explain(
        model,
        frame,
        task=task,
        row=args.row,
        reference=reference_values(train, features),
        threshold=params.evaluate.threshold,
        target=normalise_name(params.data.target),
        source=str(source),
    )
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, allow_nan=False))
    else:
        print(render(explanation, args.top), end="")
