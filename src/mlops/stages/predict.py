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
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from mlops import serving
from mlops.config import PATHS, Params
from mlops.errors import CheckFailed, UsageError
from mlops.ingestion import csv_layout, ingest, normalise_name
from mlops.io import dvc, files, modelfile, tables
from mlops.registry import Manifest
from mlops.serving import Production
from mlops.stages.registry import read_production
from mlops.tasks.task import get_task
from mlops.validation import load_contract

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
    checked, problem = serving.check_contract(
        frame, contract, records=False, features=production.features
    )
    if problem is not None:
        raise CheckFailed(f"{args.input}: does not match the data contract: {problem}")
    predictions = serving.predict(production, checked)
    now = datetime.now(UTC)
    _write(args.output, pd.concat([checked, predictions], axis="columns"))
    PredictionLog(params).write(serving.log_lines(checked, predictions, production, "batch", now))
    print(
        f"{len(predictions)} predictions by model {production.version} -> {args.output}"
        f"{_imputed(serving.imputed_counts(predictions))}"
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


def read_contract(params: Params) -> serving.Contract:
    schema = load_contract(files.read_yaml(PATHS.schema, "data contract"), str(PATHS.schema))
    return serving.Contract(
        schema,
        normalise_name(params.data.target),
        params.validate_.extra_columns,
        params.validate_.max_value_skew,
        params.serve.missing_values,
    )


def load_production(params: Params, contract: pa.DataFrameSchema) -> Production:
    manifest = read_production()
    if manifest is None:
        raise UsageError(f"{PATHS.production} not found: promote a model first (`mlops promote`)")
    return load_manifest_model(manifest, params, contract)


def load_manifest_model(
    manifest: Manifest, params: Params, contract: pa.DataFrameSchema
) -> Production:
    """The model bytes the manifest names, from the DVC cache (else the DVC remote),
    refused unless their md5 is the manifest's."""
    path = dvc.cache_file(manifest.model_md5)
    if not path.is_file():
        dvc.pull_object(manifest.model_md5)
    what = f"model {manifest.version} in the DVC cache (`dvc pull` or `mlops rollback`)"
    data = files.read_bytes(path, what)
    if files.bytes_md5(data) != manifest.model_md5:
        raise UsageError(
            f"{path}: bytes do not match md5 {manifest.model_md5} that {PATHS.production} "
            f"records for {manifest.version}; refusing to load it"
        )
    # Imported once params, contract and manifest are checked (see mlops.cli):
    # scikit-learn is slow, and skops needs it to load the model anyway.
    from mlops.modeling import TRUSTED_TYPES

    model = modelfile.load_bytes(data, TRUSTED_TYPES, str(path))
    task = get_task(params.data.task)
    try:
        serving.check_task(
            model,
            task,
            f"model {manifest.version} ({path})",
            "promote a model trained for this task (or `mlops rollback --to` one)",
        )
        features = serving.model_features(model, contract, str(path))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Production(
        model, manifest.version, manifest.model_md5, features, task, params.evaluate.threshold
    )


class PredictionLog:
    """Inputs and predictions for monitoring: one JSON-lines file per UTC day in
    params.yaml ``serve.log_dir``; day files older than ``log_retention_days`` go."""

    def __init__(self, params: Params) -> None:
        self.folder = Path(params.serve.log_dir)
        self.keep_days = params.serve.log_retention_days
        self._lock = threading.Lock()
        self._day: str | None = None

    def write(self, text: str, now: datetime | None = None) -> None:
        today = (now or datetime.now(UTC)).date()
        with self._lock:
            if self._day != today.isoformat():
                expired = serving.expired_logs(files.list_names(self.folder), today, self.keep_days)
                files.remove_files([self.folder / name for name in expired])
                self._day = today.isoformat()
            files.append_text(self.folder / serving.log_name(today), text)
