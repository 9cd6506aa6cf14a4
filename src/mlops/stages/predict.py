"""Command ``mlops predict --input FILE --output FILE``: batch predictions by production.

The model is the one models/production.json names, read from the DVC cache by
its md5 (content-addressed, so a rollback only has to rewrite the manifest) and
verified against that md5 before skops loads it with the reviewed types. The
input (CSV, Parquet, Feather or JSON, compressed or not; a CSV's separator and header
sniffed, else read as params.yaml ``data`` says) is checked against the data contract, the target
optional; the output, in the format its name asks for (.csv, .csv.gz, .tsv,
.parquet, .json, .jsonl), holds the input columns as the user gave them (names
and values untouched: a CSV's fields are echoed as the text they hold) plus the
task's output columns (params.yaml ``data.task``: binary ``probability``
and ``prediction``; multiclass ``probability_<class>`` per class and
``prediction``; regression ``prediction``) and ``imputed``, after a ``request_id``
column: ``<batch uuid>-<row>``, the id a label known later is sent back under.

Each row is logged for monitoring with its request id and ``latency_ms``, the
batch's time (read, ingest, contract check, predict) over its rows; a batch
refused (its rows cannot be read as the data says, or break the data contract:
exit code 1) is logged as one record with the reason, so the refusal rate a
monitor reads counts batches that never got an answer. A usage error (no such
file, no production model) is no batch and is not logged.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mlops.config import Params
from mlops.data.ingestion import csv_layout, ingest
from mlops.errors import CheckFailed
from mlops.io import files, tables
from mlops.serving import service
from mlops.serving.production import PredictionLog, load_production, read_contract

SUMMARY = "batch predictions by the production model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", type=Path, required=True, help="rows to score: CSV, Parquet, Feather or JSON"
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="predictions file: .csv, .csv.gz, .tsv, .parquet, .json or .jsonl",
    )


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    tables.output_format(args.output)  # an output name we can't honour fails before any work
    contract = read_contract(params)
    production = load_production(params, contract.schema)
    layout = csv_layout(params.data, list(contract.schema.columns))
    log = PredictionLog(params)
    batch = service.new_request_id()
    started = time.perf_counter()
    rows: int | None = None  # known once the file is read
    try:
        source = tables.read_input(args.input, params.data, layout)
        rows = len(source)
        frame = ingest(source, params.data, require_target=False)
        checked, problem = service.admit(
            frame, contract, records=False, features=production.features
        )
        if problem is not None:
            raise CheckFailed(f"{args.input}: does not match the data contract: {problem}")
    except CheckFailed as exc:
        now = datetime.now(UTC)
        refusal = service.refusal_line(production.version, "batch", now, batch, str(exc), rows=rows)
        log.write(refusal, now)
        raise
    predictions = service.predict(production, checked)
    latency_ms = (time.perf_counter() - started) * 1000 / max(len(predictions), 1)
    now = datetime.now(UTC)
    ids = service.row_ids(batch, len(predictions), suffix_single=True)
    answered = pd.concat(
        [pd.DataFrame({service.REQUEST_ID: ids}, index=predictions.index), predictions],
        axis="columns",
    )
    echoed = _echo(args.input, args.output, source, params, layout)
    # Suffixed, so that an input column can't collide with an output column.
    echoed = echoed.rename(columns=lambda c: f"{c}_input" if c in answered.columns else c)
    if len(echoed) != len(predictions):  # both reads parse the same lines the same way
        raise CheckFailed(
            f"{args.input}: read {len(echoed)} rows to echo, {len(predictions)} scored"
        )
    echoed.index = predictions.index
    tables.write_output(args.output, pd.concat([echoed, answered], axis="columns"))
    lines = service.log_lines(
        checked, predictions, production, "batch", now, request_ids=ids, latency_ms=latency_ms
    )
    log.write(lines, now)
    print(
        f"{len(predictions)} predictions by model {production.version} -> {args.output}"
        f"{_imputed(service.imputed_counts(predictions))}"
    )


def _imputed(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    listed = ", ".join(f"{name} in {rows} row(s)" for name, rows in counts.items())
    return f"; imputed {listed}"


def _echo(
    input_path: Path,
    output: Path,
    source: pd.DataFrame,
    params: Params,
    layout: tables.CsvLayout,
) -> pd.DataFrame:
    """The input rows as the user gave them: their own column names, and for a CSV written
    back as delimited text, each field's own text ("39", not ingest's 39.0)."""
    if tables.is_delimited(output) and not tables.is_typed(input_path):
        return tables.read_input(input_path, params.data, layout, as_text=True)
    return source
