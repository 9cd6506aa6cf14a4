"""Command ``mlops serve``: an HTTP endpoint for the production model.

``POST /predict`` takes ``{"rows": [{column: value, ...}, ...]}`` and answers
``{"model_version": ..., "predictions": [{...}, ...]}``, one object per row: its
``request_id`` and the task's columns (params.yaml ``data.task``): binary
``{"probability": p, "prediction": 0|1}``, multiclass ``{"probability_<class>": p,
..., "prediction": class}``, regression ``{"prediction": value}``;
``GET /health`` names the model being served. Requests are checked against the
data contract (4xx JSON errors), bodies over ``serve.max_body_bytes`` get 413,
a body not received within ``serve.read_timeout_s`` gets 408. A model feature
missing in a row is imputed by the model (``serve.missing_values: impute``) and
named in the answer's ``imputed``.

The request id is the client's ``X-Request-ID`` header if it sends one (else a new
uuid4 hex), ``-<row>``-suffixed per row when a request holds several; it comes back
in the answer, in an error's body and as the response's ``X-Request-ID``, so a label
known later can be sent back under it. Every answered row is logged for monitoring
with its request id and the request's handling time (``latency_ms``: from the body
received to the answer ready; the network is the client's), and every refused
prediction request (any 4xx of ``POST``) as one record with its reason: a
monitor sees a client sending broken rows, not only the rows that passed.

The server is the standard library's ThreadingHTTPServer: per request the
model's own predict dominates the time, so a faster HTTP stack would not show
(bench/serving.py measures it). A watcher thread re-reads models/production.json
when it changes, so ``mlops rollback`` (or a promotion) takes effect without a
restart; a manifest or model that fails to load leaves the current one service.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlops.config import PATHS, Params
from mlops.errors import MlopsError, clip
from mlops.io import files
from mlops.serving import service
from mlops.serving.production import PredictionLog, load_production, read_contract
from mlops.serving.service import Production, RequestError

SUMMARY = "HTTP endpoint for the production model (POST /predict, GET /health)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: params serve.host)")
    parser.add_argument("--port", type=int, help="port (default: params serve.port; 0: any)")


RELOAD_SECONDS = 1.0
DRAIN_BYTES = 64 << 20  # an oversized body is drained up to this, then the connection closed
_MAX_LENGTH_DIGITS = 18  # a longer Content-Length is over any limit (and over int()'s)
REQUEST_ID_HEADER = "X-Request-ID"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    server = make_server(params, host=args.host, port=args.port)
    print(
        f"serving model {server.app.watcher.current.version} on {server.url} "
        "(POST /predict, GET /health); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.app.watcher.stop()
        server.server_close()


def make_server(params: Params, host: str | None = None, port: int | None = None) -> Server:
    """A ready server (model loaded, watcher started); ``serve_forever`` runs it."""
    contract = read_contract(params)
    watcher = ProductionWatcher(lambda: load_production(params, contract.schema), RELOAD_SECONDS)
    app = App(params, contract, watcher)
    address = (host or params.serve.host, params.serve.port if port is None else port)
    server = Server(address, Handler, app)
    watcher.start()
    return server


class ProductionWatcher:
    """Holds the production model; swaps it when models/production.json changes."""

    def __init__(self, load: Callable[[], Production], interval: float) -> None:
        self._load = load
        self._interval = interval
        self._signature = files.file_signature(PATHS.production)
        self.current = load()
        self.problem: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="production-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()

    def check(self) -> None:
        signature = files.file_signature(PATHS.production)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            loaded = self._load()
        except MlopsError as exc:
            self.problem = f"kept {self.current.version}: {exc}"
            print(f"mlops serve: error: {self.problem}", file=sys.stderr, flush=True)
            return
        self.problem = None
        if loaded.model_md5 != self.current.model_md5 or loaded.version != self.current.version:
            self.current = loaded
            print(f"mlops serve: now serving model {loaded.version}", file=sys.stderr, flush=True)


class App:
    """What the HTTP handler calls: answers as (status, JSON document)."""

    def __init__(self, params: Params, contract: service.Contract, watcher: ProductionWatcher):
        self.contract = contract
        self.watcher = watcher
        self.max_body_bytes = params.serve.max_body_bytes
        self.read_timeout_s = params.serve.read_timeout_s
        self.log = PredictionLog(params)

    def predict(self, body: bytes, request_id: str) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        production = self.watcher.current  # one model for the whole request, even mid-swap
        try:
            inputs, predictions = service.answer(body, production, self.contract)
        except RequestError as exc:
            self.refused(exc.message, request_id)
            return exc.status, service.error_body(exc.message, request_id)
        latency_ms = (time.perf_counter() - started) * 1000
        ids = service.row_ids(request_id, len(predictions), suffix_single=False)
        now = datetime.now(UTC)
        lines = service.log_lines(
            inputs, predictions, production, "serve", now, request_ids=ids, latency_ms=latency_ms
        )
        self.log.write(lines, now)
        return 200, service.response(production, predictions, ids)

    def refused(self, reason: str, request_id: str) -> None:
        """Log a refused prediction request (no inputs: they were not admitted)."""
        now = datetime.now(UTC)
        version = self.watcher.current.version
        self.log.write(service.refusal_line(version, "serve", now, request_id, reason), now)

    def health(self) -> tuple[int, dict[str, Any]]:
        production = self.watcher.current
        document: dict[str, Any] = {
            "status": "ok",
            "model_version": production.version,
            "model_md5": production.model_md5,
        }
        if self.watcher.problem:
            document["warning"] = self.watcher.problem
        return 200, document


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[Handler], app: App) -> None:
        self.app = app
        super().__init__(address, handler)
        self.url = f"http://{address[0]}:{self.server_port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line instead of socketserver's traceback: mostly a client that went away."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            line = f"client {client_address[0]} went away ({type(error).__name__})"
        else:
            line = f"error: {type(error).__name__}: {clip(error, 200)}".replace("\n", " ")
        print(f"mlops serve: {line}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    server: Server
    request_id = ""  # the POST being answered ("": none, as for GET /health)

    def setup(self) -> None:
        super().setup()
        # Every read and write of the connection (an idle keep-alive one too) times out.
        self.connection.settimeout(self.server.app.read_timeout_s)

    def do_GET(self) -> None:
        self.request_id = ""  # a keep-alive connection's earlier POST is not this request
        if self.path.split("?")[0] == "/health":
            self._send(*self.server.app.health())
        else:
            self._send(404, service.error_body(f"no such endpoint {clip(self.path)}; try /health"))

    def do_POST(self) -> None:
        try:
            self.request_id = service.client_request_id(self.headers.get(REQUEST_ID_HEADER))
        except RequestError as exc:
            self.request_id = service.new_request_id()
            self._refuse(exc.status, exc.message)
            return
        if self.path.split("?")[0] != "/predict":
            self._refuse(404, f"no such endpoint {clip(self.path)}; POST /predict")
            return
        length = self._content_length()
        if length is None:
            return
        body = self._read_body(length)
        if body is None:
            return
        try:
            status, document = self.server.app.predict(body, self.request_id)
        except Exception as exc:  # one bad request must not take the server down
            message = clip(f"{type(exc).__name__}: {exc}", 200).replace("\n", " ")
            print(f"mlops serve: error: {message}", file=sys.stderr, flush=True)
            error = service.error_body("internal error while predicting", self.request_id)
            status, document = 500, error
        self._send(status, document)

    def _read_body(self, length: int) -> bytes | None:
        """The body, or None after refusing a client that sends it too slowly (408)
        or closing on one that hung up: a short body cannot hold a thread for ever."""
        limit = self.server.app.read_timeout_s
        deadline = time.monotonic() + limit
        chunks: list[bytes] = []
        received = 0
        try:
            while received < length:
                self.connection.settimeout(max(deadline - time.monotonic(), 1e-3))
                chunk = self.rfile.read1(length - received)
                if not chunk:  # the client closed its side: there is no one to answer
                    self.close_connection = True
                    return None
                chunks.append(chunk)
                received += len(chunk)
                if received < length and time.monotonic() >= deadline:
                    raise TimeoutError
        except TimeoutError:
            self._refuse(408, f"request body not received within {limit:g} s")
            return None
        finally:
            self.connection.settimeout(limit)
        return b"".join(chunks)

    def _content_length(self) -> int | None:
        """The declared body size, or None after refusing the request (411, 413)."""
        limit = self.server.app.max_body_bytes
        declared = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or declared is None or not declared.isdigit():
            self._refuse(411, "a Content-Length header is required")
            return None
        digits = declared.lstrip("0") or "0"
        size = int(digits) if len(digits) <= _MAX_LENGTH_DIGITS else sys.maxsize
        if size > limit:
            self._refuse(413, f"request body of {clip(declared)} bytes exceeds {limit} bytes")
            if size <= DRAIN_BYTES:  # a larger upload is not waited for: the connection closes
                self._discard(size)
            return None
        return size

    def _refuse(self, status: int, message: str) -> None:
        """Refuse a POST before its body is read: logged, answered, connection closed
        (so the unread body's bytes are not taken as the next request)."""
        self.server.app.refused(message, self.request_id)
        self.close_connection = True
        self._send(status, service.error_body(message, self.request_id), close=True)

    def _discard(self, size: int) -> None:
        """Read (and drop) what the client is still sending, so a client that sends the
        whole body before reading gets the answer instead of a broken connection."""
        while size > 0 and (chunk := self.rfile.read(min(size, 1 << 16))):
            size -= len(chunk)

    def _send(self, status: int, document: dict[str, Any], close: bool = False) -> None:
        body = json.dumps(document).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.request_id:
            self.send_header(REQUEST_ID_HEADER, self.request_id)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the prediction log records every answer; errors go to stderr."""
