"""The production model as serving uses it: the data contract at the door, the model
models/production.json names (from the DVC cache, verified by its md5), and the
prediction log. Shared by ``mlops predict`` and ``mlops serve``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pandera.pandas as pa

from mlops.config import PATHS, Params
from mlops.data.contract import load_contract
from mlops.data.ingestion import normalise_name
from mlops.errors import UsageError
from mlops.io import dvc, files, modelfile
from mlops.release.manifest import read_production
from mlops.release.registry import Manifest
from mlops.serving import service
from mlops.serving.service import Production
from mlops.tasks.families import trusted_types
from mlops.tasks.task import get_task


def read_contract(params: Params) -> service.Contract:
    schema = load_contract(files.read_yaml(PATHS.schema, "data contract"), str(PATHS.schema))
    return service.Contract(
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
    # skops imports scikit-learn here, once params, contract and manifest are checked.
    model = modelfile.load_bytes(data, trusted_types(), str(path))
    task = get_task(params.data.task)
    try:
        service.check_task(
            model,
            task,
            f"model {manifest.version} ({path})",
            "promote a model trained for this task (or `mlops rollback --to` one)",
        )
        features = service.model_features(model, contract, str(path))
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
                expired = service.expired_logs(files.list_names(self.folder), today, self.keep_days)
                files.remove_files([self.folder / name for name in expired])
                self._day = today.isoformat()
            files.append_text(self.folder / service.log_name(today), text)
