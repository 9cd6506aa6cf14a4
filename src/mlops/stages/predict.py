"""Command ``mlops predict --input FILE --output FILE``: batch predictions by production.

The model is the one models/production.json names, read from the DVC cache by
its md5 (content-addressed, so a rollback only has to rewrite the manifest) and
verified against that md5 before skops loads it with the reviewed types. The
input (CSV, gzipped CSV or Parquet; separator and header sniffed, else read as
params.yaml ``data`` says) is checked against the data contract, the target
optional; the output (CSV, or Parquet by its suffix) holds the input columns
plus the task's output columns (params.yaml ``data.task``: binary ``probability``
and ``prediction``; multiclass ``probability_<class>`` per class and
``prediction``; regression ``prediction``) and ``imputed``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mlops.data.ingestion import csv_layout, ingest
from mlops.errors import CheckFailed
from mlops.io import files, tables
from mlops.serving import service
from mlops.serving.production import PredictionLog, load_production, read_contract

SUMMARY = "batch predictions by the production model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet rows to score")
    parser.add_argument(
        "--output", type=Path, required=True, help="predictions file (.parquet, else CSV)"
    )


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    contract = read_contract(params)
    production = load_production(params, contract.schema)
    layout = csv_layout(params.data, list(contract.schema.columns))
    source = tables.read_input(args.input, params.data, layout)
    frame = ingest(source, params.data, require_target=False)
    checked, problem = service.admit(frame, contract, records=False, features=production.features)
    if problem is not None:
        raise CheckFailed(f"{args.input}: does not match the data contract: {problem}")
    predictions = service.predict(production, checked)
    now = datetime.now(UTC)
    _write(args.output, pd.concat([checked, predictions], axis="columns"))
    PredictionLog(params).write(service.log_lines(checked, predictions, production, "batch", now))
    print(
        f"{len(predictions)} predictions by model {production.version} -> {args.output}"
        f"{_imputed(service.imputed_counts(predictions))}"
    )


def _imputed(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    listed = ", ".join(f"{name} in {rows} row(s)" for name, rows in counts.items())
    return f"; imputed {listed}"


def _write(path: Path, table: pd.DataFrame) -> None:
    if path.suffix.lower() == ".parquet":
        files.write_parquet(path, table)
    else:
        # Every digit: the user's inputs come back as given and a predicted value whole
        # (files.write_csv rounds to 6 significant digits, for report tables).
        files.write_text(path, table.to_csv(index=False))
