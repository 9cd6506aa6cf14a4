"""Serving logic: a request becomes a contract-checked frame, then the model's answer.

Pure functions shared by batch prediction (``mlops predict``) and the HTTP
server (``mlops serve``): the stage modules read files, load the production
model and write the prediction log. The answer's columns are the task's
(``Task.columns``): binary ``probability`` and ``prediction`` (0/1 at the
threshold), multiclass ``probability_<class>`` per class and ``prediction`` (the
class), regression ``prediction`` (the value); plus the features imputed per row.

Every answered row has a request id, so an outcome known later (a labels file of
request id -> actual) can be joined to what the model said: ``serve`` takes the
client's ``X-Request-ID`` (else a fresh uuid4 hex), suffixed ``-<row>`` for a
request of several rows; ``predict`` names each row ``<batch uuid>-<row>``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from mlops.config import MissingValues
from mlops.data.contract import ExtraPolicy, Failure, check_contract
from mlops.data.ingestion import normalise_columns
from mlops.errors import CheckFailed, clip, shorten
from mlops.tasks.task import Task

LOG_PREFIX = "predictions-"
LOG_SUFFIX = ".jsonl"
_LOG_NAME = re.compile(rf"^{LOG_PREFIX}(\d{{4}}-\d{{2}}-\d{{2}}){re.escape(LOG_SUFFIX)}$")
_MAX_LISTED = 5
IMPUTED = "imputed"  # the batch output's column naming each row's imputed features
REQUEST_ID = "request_id"  # each answered row's id: in the answer, the output file, the log
# A client's request id is echoed in the log and the answer: short, printable, no spaces.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_SEPARATOR = ";"  # between feature names in that column (snake_case names hold none)


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one line for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Production:
    """The loaded production model and what is needed to answer with it."""

    model: Any
    version: str
    model_md5: str
    features: tuple[str, ...]
    task: Task
    threshold: float  # evaluate.threshold (binary: where the probability becomes 1)


def check_task(model: Any, task: Task, source: str, fix: str) -> None:
    """A ValueError unless ``model`` makes ``task``'s predictions: a model trained for
    another task (a regressor when the task is binary) is refused in one line ending
    in ``fix``, instead of failing inside scikit-learn or answering in the wrong schema."""
    problem = task.misfit(model)
    if problem is not None:
        raise ValueError(
            f"{source}: the model does not fit params.yaml data.task {task.name!r}: "
            f"{problem}; {fix}"
        )


def model_features(model: Any, contract: pa.DataFrameSchema, source: str) -> tuple[str, ...]:
    """The columns the fitted pipeline reads; each must be in the data contract."""
    names = tuple(str(n) for n in getattr(model, "feature_names_in_", ()))
    if not names:
        raise ValueError(f"{source}: the model does not record the columns it was fitted on")
    unknown = [n for n in names if n not in contract.columns]
    if unknown:
        raise ValueError(f"{source}: the model uses columns the data contract lacks: {unknown}")
    return names


# --- requests ------------------------------------------------------------------


def parse_rows(body: bytes) -> list[dict[str, Any]]:
    """``{"rows": [{column: value, ...}, ...]}`` -> the rows, or a 400."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "request body is not valid JSON") from None
    except RecursionError:
        raise RequestError(400, "request body is JSON nested too deeply") from None
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise RequestError(
            400, 'expected a JSON object {"rows": [{"column": value, ...}, ...]} with >= 1 row'
        )
    return rows


def rows_to_frame(rows: Sequence[Mapping[str, Any]], contract: pa.DataFrameSchema) -> pd.DataFrame:
    """A frame typed as the contract expects where JSON is ambiguous, and no further:
    a JSON integer is a number for a float column, and a column of nulls has no type
    of its own. A string where a number belongs stays a string, so the contract
    rejects it instead of guessing. Column names are normalised as ``ingest`` does
    (``"OD280/OD315"`` -> ``od280_od315``), so a request may name the columns as the
    source data does, as a batch file given to ``mlops predict`` may."""
    try:
        frame = normalise_columns(pd.DataFrame.from_records(list(rows)))
    except CheckFailed as exc:
        raise RequestError(422, f"request column names: {clip(exc, 200)}") from None
    return pd.DataFrame(
        {str(c): _align(frame[c], contract) for c in frame.columns}, index=frame.index
    )


def _align(column: pd.Series, contract: pa.DataFrameSchema) -> pd.Series:
    expected = contract.columns.get(str(column.name))
    if expected is None or expected.dtype is None:
        return column
    dtype = expected.dtype.type
    if column.isna().all() or (
        pd.api.types.is_float_dtype(dtype) and pd.api.types.is_integer_dtype(column.dtype)
    ):
        return column.astype(dtype)
    return column


@dataclass(frozen=True)
class Contract:
    """The data contract and the policies for checking a batch or a request against it."""

    schema: pa.DataFrameSchema
    target: str
    extra_columns: ExtraPolicy
    max_value_skew: float
    missing_values: MissingValues = "refuse"


def admit(
    frame: pd.DataFrame, contract: Contract, *, records: bool, features: Collection[str] = ()
) -> tuple[pd.DataFrame, str | None]:
    """(the frame to predict on, None) or (frame, one line on what breaks the contract).

    The target is optional: labels are checked when present. ``records`` marks HTTP
    requests: a handful of rows, where a nullable column that happens to be null in
    every row is normal, so the table-level ``all_null`` check does not apply. With
    ``missing_values: impute``, a null in one of the model's ``features`` is no breach:
    the model's imputers fill it. Schema skew (a missing column, a wrong type) still is.
    """
    schema = contract.schema
    if contract.target not in frame.columns:
        schema = schema.remove_columns([contract.target])
    result = check_contract(frame, schema, None, contract.extra_columns, contract.max_value_skew)
    imputed = set(features) if contract.missing_values == "impute" else set()
    fatal = [
        f
        for f in result.failures
        if f.fatal
        and not (records and f.check == "all_null")
        and not (f.check == "not_nullable" and f.column in imputed)
    ]
    if fatal:
        return frame, describe_failures(fatal)
    if contract.extra_columns == "drop":
        frame = frame.drop(columns=[c for c in frame.columns if c not in schema.columns])
    return frame, None


def describe_failures(failures: Sequence[Failure]) -> str:
    """One line; every value from the input (a name, an example) cut to a short prefix."""
    missing = [clip(f.column) for f in failures if f.check == "column_in_dataframe"]
    extra = [clip(f.column) for f in failures if f.check == "column_in_schema"]
    parts = [f"missing column(s): {', '.join(missing)}"] if missing else []
    parts += [f"unexpected column(s): {', '.join(extra)}"] if extra else []
    others = [f for f in failures if f.check not in ("column_in_dataframe", "column_in_schema")]
    for failure in others[:_MAX_LISTED]:
        got = (
            f"got {clip(failure.examples[0])}"
            if failure.check == "dtype" and failure.examples
            else f"e.g. [{', '.join(shorten(e) for e in failure.examples[:3])}]"
        )
        parts.append(
            f"column {shorten(failure.column)} failed {clip(failure.detail)} "
            f"in {failure.failing_rows} row(s) ({got})"
        )
    more = len(others) - _MAX_LISTED
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --- request ids -----------------------------------------------------------------


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id(header: str | None) -> str:
    """The client's ``X-Request-ID`` if it gave one (else a new id), or a 400: the id is
    written into the log and the answer, so it must be a short printable token."""
    if header is None:
        return new_request_id()
    if not _CLIENT_ID.fullmatch(header):
        raise RequestError(
            400,
            f"X-Request-ID {clip(header)!r} is not 1-128 characters of letters, digits and ._:/+=-",
        )
    return header


def row_ids(base: str, rows: int, *, suffix_single: bool) -> list[str]:
    """``base-0``, ``base-1``, ...; a single row keeps ``base`` itself unless
    ``suffix_single`` (a batch's ids have one shape whatever its size)."""
    if rows == 1 and not suffix_single:
        return [base]
    return [f"{base}-{row}" for row in range(rows)]


# --- answers -------------------------------------------------------------------


def predict(production: Production, frame: pd.DataFrame) -> pd.DataFrame:
    """The task's output columns (``Task.columns``), then the features the model's
    imputers filled in each row (``;``-separated, or "")."""
    features = frame[list(production.features)]
    task = production.task
    columns = task.columns(task.predict(production.model, features, production.threshold))
    return pd.DataFrame(columns | {IMPUTED: imputed_features(features)}, index=frame.index)


def imputed_features(features: pd.DataFrame) -> pd.Series:
    """Per row, the names of the features missing in it, joined by ``;``."""
    missing = features.isna().to_numpy()
    names = np.array(features.columns, dtype=object)
    joined = np.full(len(features), "", dtype=object)
    for position in np.flatnonzero(missing.any(axis=1)):  # only the rows with a gap
        joined[position] = _SEPARATOR.join(names[missing[position]])
    return pd.Series(joined, index=features.index, dtype="str")


def imputed_counts(predictions: pd.DataFrame) -> dict[str, int]:
    """Per feature, the rows in which the model imputed it (features never imputed left out)."""
    return count_imputed(predictions[IMPUTED].tolist())


def count_imputed(imputed: Sequence[str]) -> dict[str, int]:
    """``imputed_counts`` of the rows' ``imputed`` strings."""
    return dict(Counter(name for joined in imputed if joined for name in _names(joined)))


def _names(joined: str) -> list[str]:
    return joined.split(_SEPARATOR) if joined else []


def answers(predictions: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row's output columns as plain JSON values (a class label as its own type)."""
    columns = [str(c) for c in predictions.columns if c != IMPUTED]
    values = zip(*(predictions[c].tolist() for c in columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in values]


def response(
    production: Production, predictions: pd.DataFrame, request_ids: Sequence[str]
) -> dict[str, Any]:
    """The answer: per row its request id and output; a row where features were
    imputed names them under ``imputed``."""
    return document(
        production.version, request_ids, answers(predictions), predictions[IMPUTED].tolist()
    )


def document(
    version: str,
    request_ids: Sequence[str],
    outputs: Sequence[dict[str, Any]],
    imputed: Sequence[str],
) -> dict[str, Any]:
    """``response`` from its parts: the rows' ids, ``answers`` and ``imputed`` strings."""
    rows = zip(request_ids, outputs, imputed, strict=True)
    return {
        "model_version": version,
        "predictions": [
            {REQUEST_ID: request_id} | output | ({IMPUTED: _names(names)} if names else {})
            for request_id, output, names in rows
        ],
        IMPUTED: count_imputed(imputed),
    }


def answer(
    body: bytes, production: Production, contract: Contract
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A request body -> (checked inputs, predictions); a RequestError for a bad request."""
    frame = rows_to_frame(parse_rows(body), contract.schema)
    checked, problem = admit(frame, contract, records=True, features=production.features)
    if problem is not None:
        raise RequestError(422, f"request does not match the data contract: {problem}")
    return checked, predict(production, checked)


def error_body(message: str, request_id: str | None = None) -> dict[str, str]:
    return {"error": message} | ({REQUEST_ID: request_id} if request_id else {})


# --- the prediction log (inputs and answers, for monitoring) --------------------


def log_lines(
    inputs: pd.DataFrame,
    predictions: pd.DataFrame,
    production: Production,
    source: str,
    logged_at: datetime,
    *,
    request_ids: Sequence[str] | None = None,
    latency_ms: float | Sequence[float] | None = None,
) -> str:
    """One JSON object per row: when, which model, the latency (serve's handling time of
    the row's request, one number per row or for all; predict's time per row; left out if
    not measured), the row's request id (``request_ids``; by default ``<new uuid>-<row>``),
    the answer (the task's output columns), the features the model imputed in that row
    and the inputs."""
    head = json.dumps(
        {
            "logged_at": logged_at.isoformat(timespec="milliseconds"),
            "source": source,
            "model_version": production.version,
        }
    )[:-1]
    if latency_ms is None:
        heads = [head] * len(predictions)
    elif isinstance(latency_ms, int | float):
        heads = [f'{head}, "latency_ms": {json.dumps(round(latency_ms, 3))}'] * len(predictions)
    else:
        heads = [f'{head}, "latency_ms": {json.dumps(round(ms, 3))}' for ms in latency_ms]
    if request_ids is None:
        request_ids = row_ids(new_request_id(), len(predictions), suffix_single=True)
    # Inputs and answer are encoded column by column (every digit: pandas' to_json keeps
    # 10 decimals, which turns a feature's exact values into unseen ones for monitoring);
    # only the stitching is done per row here.
    rows = _json_objects(inputs)
    keys = {name: json.dumps(str(name)) for name in predictions.columns if name != IMPUTED}
    fields = [[f'"{REQUEST_ID}": {value}' for value in map(json.dumps, request_ids)]]
    fields += [
        [f"{key}: {value}" for value in _json_values(predictions[name])]
        for name, key in keys.items()
    ]
    outputs = zip(
        map(", ".join, zip(*fields, strict=True)), predictions[IMPUTED].tolist(), strict=True
    )
    return "".join(
        f'{head}, {output}, "{IMPUTED}": {json.dumps(_names(names))}, "inputs": {row}}}\n'
        for head, row, (output, names) in zip(heads, rows, outputs, strict=True)
    )


def refusal_line(
    version: str,
    source: str,
    logged_at: datetime,
    request_id: str,
    reason: str,
    *,
    rows: int | None = None,
) -> str:
    """One JSON object for a refused request or batch: no inputs (they broke the
    contract, or never arrived), the one-line reason monitoring counts refusals by, and
    (a batch read before it was refused) how many rows it held, so a batch refused whole
    weighs in the refused rate as its rows."""
    record: dict[str, Any] = {
        "logged_at": logged_at.isoformat(timespec="milliseconds"),
        "source": source,
        "model_version": version,
        REQUEST_ID: request_id,
        "refused": True,
        "reason": reason,
    }
    if rows is not None:
        record["rows"] = rows
    return json.dumps(record) + "\n"


def _json_objects(frame: pd.DataFrame) -> list[str]:
    """Each row of ``frame`` as a JSON object, built column by column."""
    if frame.columns.empty:
        return ["{}"] * len(frame)
    fields = [
        [f"{key}: {value}" for value in _json_values(frame[name])]
        for name, key in ((name, json.dumps(str(name))) for name in frame.columns)
    ]
    return [f"{{{', '.join(row)}}}" for row in zip(*fields, strict=True)]


def _json_values(column: pd.Series) -> list[str]:
    """Each value as JSON text. A number's ``repr`` is its exact JSON and several times
    faster than ``json.dumps`` per value; text is quoted and escaped; a missing value
    is null."""
    values = column.tolist()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        text = list(map(repr, values))
        # JSON has no NaN or infinity: a model answering one is logged as null (never as
        # bare `nan`, which would make the whole line unreadable to monitoring).
        for position in np.flatnonzero(~np.isfinite(column.to_numpy(dtype=float))):
            text[position] = "null"
        return text
    missing = column.isna().to_numpy()
    return [
        "null" if gap else json.dumps(value, default=str)
        for value, gap in zip(values, missing, strict=True)
    ]


def log_name(day: date) -> str:
    return f"{LOG_PREFIX}{day.isoformat()}{LOG_SUFFIX}"


def expired_logs(names: Sequence[str], today: date, keep_days: int) -> list[str]:
    """Day files older than the last ``keep_days`` days (today included)."""
    oldest_kept = today - timedelta(days=keep_days - 1)
    return [
        name
        for name in names
        if (match := _LOG_NAME.match(name)) and date.fromisoformat(match[1]) < oldest_kept
    ]
