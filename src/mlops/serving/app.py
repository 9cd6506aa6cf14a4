"""The HTTP service as an ASGI application (FastAPI), built from params.yaml.

``create_app(params)`` is pure: no socket, no CLI (``mlops serve`` runs it on uvicorn,
tests call it in-process). What it serves:

* ``POST /predict`` ``{"rows": [{column: value, ...}, ...]}`` -> ``{"model_version",
  "predictions": [{"request_id", <the task's columns>, "imputed"?}, ...], "imputed"}``.
  The request model is generated from the data contract (data/schema.yaml): one field per
  column with its type, nullability, allowed categories and range, so ``/docs`` shows
  them and a row that breaks them gets a 422 naming ``rows[i].column``. The response
  model is generated from the task's output columns (``Task.columns``).
* ``GET /health``: liveness (the process answers), with the model served, if any.
* ``GET /ready``: 200 once a verified model is loaded, else 503 and why.
* ``GET /metrics``: Prometheus text from prometheus_client (requests, errors, latency,
  predictions per class or predicted values, imputed values per feature, model version).

Every guarantee of the earlier hand-written server holds: POST bodies need a
Content-Length (411) within ``serve.max_body_bytes`` (413) received within
``serve.read_timeout_s`` (408); every 4xx is ``{"error": one line, "request_id"}`` and
is logged as a refusal; answered rows go to the prediction log (the same records
``mlops predict`` writes); ``X-Request-ID`` is honoured and echoed.

Requests a worker holds at once are scored in one model call (``batching.py``; params.yaml
``serve.batch_max_rows`` and ``serve.batch_wait_ms``), each still checked, refused, logged
and answered on its own.

Each worker process holds its own model and re-reads models/production.json when it
changes (a promotion or rollback): the new model is loaded and verified off the event
loop while the old one keeps answering, then swapped in one assignment, so no request
fails and none sees a half-loaded model.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.exceptions import HTTPException

from mlops.config import PATHS, Params
from mlops.data.ingestion import normalise_name
from mlops.errors import MlopsError, clip
from mlops.io import files
from mlops.serving import service
from mlops.serving.batching import Batcher
from mlops.serving.production import PredictionLog, load_production, read_contract
from mlops.serving.service import Production, RequestError
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import PREDICTION, Task, get_task

RELOAD_SECONDS = 1.0  # how often each worker looks at models/production.json
DRAIN_BYTES = 64 << 20  # an oversized body is read and dropped up to this, then refused
REQUEST_ID_HEADER = "x-request-id"
_MAX_LISTED = 5  # validation errors named in the one-line message
# Request-time buckets (seconds): single rows take milliseconds, a 1 MB batch seconds.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PATHS = ("/predict", "/health", "/ready", "/metrics", "/docs", "/openapi.json")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- request and response models from the contract and the task -------------------


@dataclass(frozen=True)
class Schemas:
    """The generated models, and the contract checks they could not express (those
    are left to pandera: ``service.admit`` runs on every request while any remain)."""

    request: type[BaseModel]
    response: type[BaseModel]
    uncovered: tuple[str, ...]


def build_schemas(contract: service.Contract, task: Task, classes: list[Any]) -> Schemas:
    fields: dict[str, Any] = {}
    uncovered: list[str] = []
    for position, (name, column) in enumerate(contract.schema.columns.items()):
        kind, gaps = _field_type(column)
        uncovered += [f"{name}: {gap}" for gap in gaps]
        # Under missing_values: impute a null is admitted wherever the model imputes it;
        # which columns those are is the loaded model's to say (checked per request).
        nullable = column.nullable or contract.missing_values == "impute"
        kind = kind | None if nullable else kind
        optional = name == contract.target  # labels are checked when present
        # Each field goes by the column's name as its alias (in /docs, requests and
        # errors): a column may be called what pydantic keeps for itself (model_dump).
        fields[f"column_{position}"] = (kind, Field(None if optional else ..., alias=str(name)))
    validators: dict[str, Any] = {"normalise": model_validator(mode="before")(_normalise_names)}
    row = create_model(
        "Row",
        __config__=ConfigDict(strict=True, extra=_EXTRA[contract.extra_columns]),
        __validators__=validators,
        **fields,
    )
    rows: Any = Annotated[list[row], Field(min_length=1)]
    request = create_model("PredictRequest", rows=(rows, ...))
    outputs: dict[str, Any] = {
        name: (_output_type(values), ...) for name, values in _example(task, classes)
    }
    answer = create_model(
        "Prediction",
        request_id=(str, ...),
        imputed=(list[str] | None, Field(None, description="features the model imputed")),
        **outputs,
    )
    response = create_model(
        "PredictResponse",
        model_version=(str, ...),
        predictions=(list[answer], ...),
        imputed=(dict[str, int], Field(description="rows in which each feature was imputed")),
    )
    return Schemas(request, response, tuple(uncovered))


def _normalise_names(row: Any) -> Any:
    """Column names as ``ingest`` normalises them, so a row may name its columns as the
    source data does (``"Education-Num"`` -> ``education_num``)."""
    if not isinstance(row, dict):
        return row
    named = {normalise_name(key): value for key, value in row.items()}
    if len(named) < len(row):
        raise ValueError("two columns have the same name once normalised to snake_case")
    return named


def _field_type(column: pa.Column) -> tuple[Any, list[str]]:
    """The column's JSON type with its checks as constraints, and the checks left over."""
    dtype = str(column.dtype)
    bounds: dict[str, Any] = {}
    categories: list[Any] | None = None
    gaps = []
    for check in column.checks:
        stats = check.statistics or {}
        if check.name == "isin":
            categories = list(stats["allowed_values"])
        elif check.name == "in_range":
            bounds["ge" if stats.get("include_min", True) else "gt"] = stats["min_value"]
            bounds["le" if stats.get("include_max", True) else "lt"] = stats["max_value"]
        elif check.name in _BOUNDS:
            bound = _BOUNDS[check.name]
            bounds[bound] = stats["min_value" if bound.startswith("g") else "max_value"]
        else:
            gaps.append(str(check.name))
    if categories is not None:
        return Literal[tuple(categories)], gaps
    if dtype.startswith(("float",)):
        return Annotated[float, Field(allow_inf_nan=False, **bounds)], gaps
    if dtype.startswith(("int", "uint")):
        return Annotated[int, Field(**bounds)], gaps
    if dtype.startswith("bool"):
        return bool, gaps
    if dtype == "str" or dtype.startswith("string"):
        return str, gaps
    return Any, [*gaps, f"dtype {dtype}"]


_EXTRA: dict[str, Literal["forbid", "ignore", "allow"]] = {
    "fail": "forbid",  # params.yaml validate.extra_columns -> pydantic's extra
    "drop": "ignore",
    "allow": "allow",
}
_BOUNDS = {
    "greater_than": "gt",
    "greater_than_or_equal_to": "ge",
    "less_than": "lt",
    "less_than_or_equal_to": "le",
}


def _example(task: Task, classes: list[Any]) -> list[tuple[str, Any]]:
    """The task's output columns with one example value each (the classes the model
    knows, when it is loaded)."""
    if not task.is_classification:
        return list(task.columns(Prediction(np.zeros(1))).items())
    known = tuple(classes) or (0, 1)
    proba = np.full((1, len(known)), 1.0 / len(known))
    return list(task.columns(Prediction(np.asarray(known[:1]), proba, known)).items())


def _output_type(values: Any) -> Any:
    kind = getattr(values, "dtype", None)
    return float if kind is not None and kind.kind == "f" else Any


# --- the model each worker holds --------------------------------------------------


@dataclass
class Holder:
    """The production model of this worker (None until one loads) and the last problem."""

    load: Callable[[], Production]
    current: Production | None = None
    problem: str | None = None
    signature: Any = field(default=None)

    def reload(self) -> bool:
        """Load what models/production.json names if it changed (True: a new model)."""
        signature = files.file_signature(PATHS.production)
        if signature == self.signature and (self.current or self.problem):
            return False
        self.signature = signature
        try:
            loaded = self.load()
        except Exception as exc:  # whatever fails, the worker keeps what it has and says why
            detail = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
            kept = f"kept {self.current.version}: " if self.current else "no model loaded: "
            self.problem = kept + clip(detail, 400).replace("\n", " ")
            print(f"mlops serve: error: {self.problem}", file=sys.stderr, flush=True)
            return False
        self.problem = None
        same = self.current and (loaded.model_md5, loaded.version) == (
            self.current.model_md5,
            self.current.version,
        )
        if same:
            return False
        self.current = loaded  # one assignment: a request holds the model it started with
        print(f"mlops serve: now serving model {loaded.version}", file=sys.stderr, flush=True)
        return True


# --- metrics ------------------------------------------------------------------------


class Metrics:
    """The service's Prometheus metrics. With several workers prometheus_client's
    multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by ``mlops serve`` before any
    worker imports it) adds up every worker's values at scrape time."""

    def __init__(self, task: Task, multiprocess_mode: bool) -> None:
        self.multiprocess_mode = multiprocess_mode
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlops_http_requests", "HTTP requests answered", ["path", "status"], registry=r
        )
        self.errors = Counter(
            "mlops_http_errors", "HTTP answers with a 4xx or 5xx status", ["path", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "mlops_http_request_duration_seconds", "Time from request to answer",
            ["path"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.classification = task.is_classification
        self.predicted = Counter(
            "mlops_predictions", "Rows predicted, per predicted class", ["prediction"], registry=r
        )
        self.values = Histogram(
            "mlops_prediction_value", "Predicted values (regression)", registry=r
        )
        self.imputed = Counter(
            "mlops_imputed_values", "Feature values the model imputed", ["feature"], registry=r
        )
        self.batch = Histogram(
            "mlops_batch_rows", "Rows per model call (requests queued together share one)",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.model = Gauge(
            "mlops_model_info", "1 for the model version a worker serves", ["version", "model_md5"],
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.ready = Gauge(
            "mlops_model_ready", "1 when every worker has a verified model",
            multiprocess_mode="livemin", registry=r,
        )  # fmt: skip

    def served(self, old: Production | None, new: Production | None) -> None:
        if old is not None:
            self.model.labels(old.version, old.model_md5).set(0)
        if new is not None:
            self.model.labels(new.version, new.model_md5).set(1)
        self.ready.set(1 if new is not None else 0)

    def answered(self, predictions: pd.DataFrame, imputed: dict[str, int]) -> None:
        if self.classification:
            for label, count in predictions[PREDICTION].value_counts().items():
                self.predicted.labels(str(label)).inc(int(count))
        else:
            for value in predictions[PREDICTION].tolist():
                self.values.observe(float(value))
        for feature, count in imputed.items():
            self.imputed.labels(feature).inc(count)

    def text(self) -> bytes:
        if not self.multiprocess_mode:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def request(self, path: str, status: int, seconds: float) -> None:
        label = path if path in _PATHS else "other"  # a client cannot invent label values
        self.requests.labels(label, str(status)).inc()
        if status >= 400:
            self.errors.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)


# --- the application -----------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """A request waiting for its batch: its rows as the schema read them."""

    records: list[dict[str, Any]]
    columns: tuple[str, ...]  # every column any row names, in order of appearance
    request_id: str
    received: float


class Service:
    """What the endpoints share: params, contract, the model holder, log and metrics."""

    def __init__(self, params: Params, multiprocess_mode: bool) -> None:
        self.contract = read_contract(params)
        self.task = get_task(params.data.task)
        self.max_body_bytes = params.serve.max_body_bytes
        self.read_timeout_s = params.serve.read_timeout_s
        self.log = PredictionLog(params)
        self.holder = Holder(lambda: load_production(params, self.contract.schema))
        self.metrics = Metrics(self.task, multiprocess_mode)
        self.schemas = build_schemas(self.contract, self.task, list(params.data.classes or []))
        # One model call at a time per worker, taking every request queued (batching.py).
        # FastAPI runs each request in a pool thread; four single-row predicts at once in
        # one process fight over the GIL and the native thread pools (10,000 requests: 28
        # requests/s; docs/performance.md). Workers (processes) are the parallelism.
        self._batcher: Batcher[_Pending, JSONResponse] = Batcher(
            self._score,
            max_size=params.serve.batch_max_rows,
            wait_s=params.serve.batch_wait_ms / 1000,
        )

    def reload(self) -> None:
        before = self.holder.current
        if self.holder.reload() or before is None:
            self.metrics.served(before, self.holder.current)

    def refuse(self, method: str, request_id: str, status: int, message: str) -> JSONResponse:
        """A 4xx answer; a refused POST is logged (monitoring counts refusals)."""
        if method == "POST":
            now = datetime.now(UTC)
            version = self.holder.current.version if self.holder.current else ""
            self.log.write(service.refusal_line(version, "serve", now, request_id, message), now)
        return JSONResponse(service.error_body(message, request_id or None), status)

    def predict(
        self, rows: list[BaseModel], request_id: str, received: float, peer: Any = None
    ) -> JSONResponse:
        """The answer to one request, scored with those queued with it (``peer``: the
        client's connection, so that a worker waits briefly for the clients it serves)."""
        records = [row.model_dump(by_alias=True, exclude_unset=True) for row in rows]
        columns = tuple(dict.fromkeys(name for record in records for name in record))
        pending = _Pending(records, columns, request_id, received)
        return self._batcher.submit(pending, len(records), peer)

    def _score(self, requests: list[_Pending]) -> list[JSONResponse | Exception]:
        """Each request's answer (or the exception its thread raises). Requests naming the
        same contract columns are scored in one frame and one model call, and logged in
        one write; each is refused and answered on its own."""
        production = self.holder.current  # one model for the whole batch, even mid-swap
        if production is None:
            problem = f"not ready: {self.holder.problem}"
            return [JSONResponse(service.error_body(problem, r.request_id), 503) for r in requests]
        answers: dict[int, JSONResponse | Exception] = {}
        checked: dict[int, pd.DataFrame] = {}
        groups: dict[tuple[Any, ...], list[int]] = {}
        known = self.contract.schema.columns
        for index, request in enumerate(requests):
            try:
                frame = self._check(request, production)
            except RequestError as exc:
                answers[index] = self.refuse("POST", request.request_id, exc.status, exc.message)
                continue
            if frame is not None:  # checked by pandera: scored as pandera left it
                checked[index] = frame
            # A column outside the contract has no declared type: typed from its own rows.
            alone = frame is not None or any(name not in known for name in request.columns)
            groups.setdefault((index,) if alone else request.columns, []).append(index)
        for members in groups.values():
            together = [requests[index] for index in members]
            frame = checked.get(members[0])
            if frame is None:
                rows = [record for request in together for record in request.records]
                frame = self._frame(rows, together[0].columns)
            try:
                documents = self._answer(together, frame, production)
            except Exception as exc:
                if len(members) == 1:
                    answers[members[0]] = exc  # raised in its own thread: a 500 for it alone
                    continue
                # One request the model cannot score must not fail the others: each alone.
                for index in members:
                    answers[index] = self._score([requests[index]])[0]
                continue
            for index, document in zip(members, documents, strict=True):
                answers[index] = JSONResponse(document)
        return [answers[index] for index in range(len(requests))]

    def _answer(
        self, requests: list[_Pending], frame: pd.DataFrame, production: Production
    ) -> list[dict[str, Any]]:
        """One model call for the requests' rows (``frame``), one log write, and each
        request's answer document."""
        predictions = service.predict(production, frame)
        self.metrics.batch.observe(len(frame))
        ids = [
            service.row_ids(request.request_id, len(request.records), suffix_single=False)
            for request in requests
        ]
        now, done = datetime.now(UTC), time.perf_counter()
        took_ms = [(done - r.received) * 1000 for r in requests for _ in r.records]
        flat = [row_id for request_ids in ids for row_id in request_ids]
        self.log.write(
            service.log_lines(
                frame, predictions, production, "serve", now, request_ids=flat, latency_ms=took_ms
            ),
            now,
        )
        outputs = service.answers(predictions)
        imputed = predictions[service.IMPUTED].tolist()
        self.metrics.answered(predictions, service.count_imputed(imputed))
        documents, start = [], 0
        for request_ids in ids:
            end = start + len(request_ids)
            documents.append(
                service.document(
                    production.version, request_ids, outputs[start:end], imputed[start:end]
                )
            )
            start = end
        return documents

    def _frame(self, records: list[dict[str, Any]], names: tuple[str, ...]) -> pd.DataFrame:
        """The rows as a frame typed as the contract says."""
        columns = self.contract.schema.columns
        data = {
            name: pd.Series(
                [record.get(name) for record in records],
                dtype=columns[name].dtype.type if name in columns else None,
            )
            for name in names
        }
        return pd.DataFrame(data)

    def _check(self, request: _Pending, production: Production) -> pd.DataFrame | None:
        """What the request model cannot say: a null in a column the model does not impute,
        and any contract check it could not express (pandera's: then the frame it
        checked, else None)."""
        if self.contract.missing_values == "impute":
            schema = self.contract.schema.columns
            for name in request.columns:
                if name in schema and not schema[name].nullable and name not in production.features:
                    rows = [
                        i for i, record in enumerate(request.records) if record.get(name) is None
                    ]
                    if rows:
                        raise RequestError(
                            422,
                            f"rows[{rows[0]}].{name}: null, but the data contract says "
                            "nullable: false and the model does not impute it",
                        )
        if not self.schemas.uncovered:
            return None
        checked, problem = service.admit(
            self._frame(request.records, request.columns),
            self.contract,
            records=True,
            features=production.features,
        )
        if problem is not None:
            raise RequestError(422, f"request does not match the data contract: {problem}")
        return checked


def create_app(params: Params, *, multiprocess_mode: bool = False) -> FastAPI:
    """The ASGI application; the model loads at start-up (lifespan), before the worker
    takes connections, and is then watched for promotions and rollbacks."""
    svc = Service(params, multiprocess_mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await asyncio.to_thread(svc.reload)
        watcher = asyncio.create_task(_watch(svc))
        try:
            yield
        finally:
            watcher.cancel()
            if multiprocess_mode:
                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(
        title="mlops serve",
        description="The production model behind the data contract (data/schema.yaml).",
        lifespan=lifespan,
    )
    app.state.service = svc

    def predict(body: Any, request: Request) -> Response:
        """Predict each row; a row that breaks the data contract gets a 422 naming it."""
        state = request.scope["state"]
        return svc.predict(body.rows, state["request_id"], state["received"], state["peer"])

    # The body's model is built at run time: FastAPI reads it from the annotation.
    predict.__annotations__ = {"body": svc.schemas.request, "request": Request, "return": Response}
    app.post(
        "/predict",
        response_model=svc.schemas.response,
        responses={400: {}, 408: {}, 411: {}, 413: {}, 422: {}, 503: {}},
    )(predict)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness: the process answers (with the model it serves, if any)."""
        production = svc.holder.current
        document: dict[str, Any] = {"status": "ok"}
        if production is not None:
            document |= {"model_version": production.version, "model_md5": production.model_md5}
        if svc.holder.problem:
            document["warning"] = svc.holder.problem
        return document

    @app.get("/ready", responses={503: {}})
    def ready() -> JSONResponse:
        """Readiness: 200 once a verified model is loaded, else 503 and why; ``worker``
        is the answering worker's process id (each of ``serve.workers`` is ready on
        its own)."""
        production = svc.holder.current
        worker = os.getpid()
        if production is None:
            document = {"status": "not ready", "error": svc.holder.problem, "worker": worker}
            return JSONResponse(document, 503)
        return JSONResponse(
            {"status": "ready", "model_version": production.version, "worker": worker}
        )

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(svc.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        request_id = request.scope["state"].get("request_id", "")
        if any(error["type"] == "json_invalid" for error in errors):
            return svc.refuse(request.method, request_id, 400, "request body is not valid JSON")
        return svc.refuse(request.method, request_id, 422, describe(errors))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        request_id = request.scope["state"].get("request_id", "")
        path = clip(request.url.path)
        message = {
            404: f"no such endpoint {path}; see /docs",
            405: f"{request.method} is not allowed on {path}; see /docs",
            400: "request body is not valid JSON",
        }.get(exc.status_code, clip(exc.detail, 200))
        return svc.refuse(request.method, request_id, exc.status_code, message)

    app.add_middleware(Door, service=svc)
    return app


def describe(errors: Any) -> str:
    """Validation errors as one line naming each field: ``rows[0].age: Input should be
    a valid number``."""
    parts = []
    for error in list(errors)[:_MAX_LISTED]:
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:]
        ).lstrip(".")
        parts.append(f"{clip(where or 'body', 120)}: {clip(error['msg'], 200)}")
    more = len(list(errors)) - _MAX_LISTED
    line = "request does not match the schema: " + "; ".join(parts)
    return line + (f"; and {more} more" if more > 0 else "")


async def _watch(svc: Service) -> None:
    """Every RELOAD_SECONDS: a changed models/production.json is loaded off the loop."""
    while True:
        await asyncio.sleep(RELOAD_SECONDS)
        await asyncio.to_thread(svc.reload)


def from_environment() -> FastAPI:
    """The factory uvicorn's workers call (``mlops serve`` names the params file in
    MLOPS_SERVE_PARAMS and turns on prometheus_client's multiprocess mode)."""
    params = files.load_params(Path(os.environ.get("MLOPS_SERVE_PARAMS", "params.yaml")))
    return create_app(params, multiprocess_mode="PROMETHEUS_MULTIPROC_DIR" in os.environ)


# --- the door: request ids, body size and read time, before FastAPI sees a request ---


class Door:
    """ASGI middleware: every request timed and counted; every POST given its request id
    (the client's ``X-Request-ID`` or a new one, echoed in the answer's header) and its
    body read here, within the size and time limits, so a slow or huge body costs a
    4xx instead of a worker's time."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        request_id = ""
        counted = [False]

        def count() -> None:
            if not counted[0]:
                counted[0] = True
                self.service.metrics.request(
                    scope["path"], status[0], time.perf_counter() - started
                )

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if request_id:
                    message["headers"] = [
                        *message.get("headers", []),
                        (REQUEST_ID_HEADER.encode(), request_id.encode()),
                    ]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted before the last byte leaves: a client holding its answer finds
                # it in /metrics (counted after, a scrape could miss it; CI saw 363 of 364).
                count()
            await send(message)

        try:
            if scope["method"] != "POST":
                await self.app(scope, receive, answer)
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                request_id = service.client_request_id(headers.get(REQUEST_ID_HEADER))
            except RequestError as exc:
                request_id = service.new_request_id()
                await self._refuse(answer, request_id, exc.status, exc.message)
                return
            body = await self._body(headers, receive, answer, request_id)
            if body is None:
                return
            client = scope.get("client")
            scope.setdefault("state", {}).update(
                request_id=request_id,
                received=time.perf_counter(),
                peer=tuple(client) if client else None,
            )
            await self.app(_as_json(scope), _replay(body), answer)
        finally:
            count()  # no answer sent (a client gone): counted as it ends

    async def _body(
        self, headers: dict[str, str], receive: Receive, send: Send, request_id: str
    ) -> bytes | None:
        """The body, or None after refusing it (411, 413, 408) or losing the client."""
        limit = self.service.max_body_bytes
        declared = headers.get("content-length")
        if "transfer-encoding" in headers or declared is None or not declared.isdigit():
            await self._refuse(send, request_id, 411, "a Content-Length header is required")
            return None
        size = int(declared)
        oversized = size > limit
        if oversized and size > DRAIN_BYTES:
            await self._refuse(send, request_id, 413, _too_big(declared, limit))
            return None
        timeout = self.service.read_timeout_s
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 1e-3))
            except TimeoutError:
                await self._refuse(
                    send, request_id, 408, f"request body not received within {timeout:g} s"
                )
                return None
            if message["type"] == "http.disconnect":
                return None  # the client went away: there is no one to answer
            if not oversized:  # an oversized body is read (so the client reads the 413), not kept
                chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if oversized:
            await self._refuse(send, request_id, 413, _too_big(declared, limit))
            return None
        return b"".join(chunks)

    async def _refuse(self, send: Send, request_id: str, status: int, message: str) -> None:
        """Answer and close the connection (an unread body must not be taken for the
        next request)."""
        response = self.service.refuse("POST", request_id, status, message)
        start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": [*response.raw_headers, (b"connection", b"close")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": response.body})


def _too_big(declared: str, limit: int) -> str:
    return f"request body of {clip(declared)} bytes exceeds {limit} bytes"


def _as_json(scope: Scope) -> Scope:
    """The request with its body declared JSON: every body this server takes is JSON, and
    ``curl -d`` or urllib label theirs as a form (the body is still checked: non-JSON
    gets a 400)."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands FastAPI the body already read, then waits for the
    disconnect it will never need."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive
