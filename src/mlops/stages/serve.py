"""Command ``mlops serve``: the production model over HTTP (mlops.serving.app on uvicorn).

``POST /predict`` (``{"rows": [...]}``), ``GET /health`` (liveness), ``GET /ready``
(a verified model loaded), ``GET /metrics`` (Prometheus), ``/docs`` (the request and
response schemas generated from the data contract and the task). params.yaml
``serve.workers`` processes share the port; each loads the model, and reloads it when
models/production.json changes. SIGTERM (or Ctrl-C) stops taking connections,
finishes the requests in flight and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from types import FrameType

from mlops.io import files
from mlops.serving.production import read_contract

SUMMARY = "HTTP endpoint for the production model (POST /predict, /health, /ready, /metrics)"
APP = "mlops.serving.app:from_environment"
GRACE_SECONDS = 30  # the longest SIGTERM waits for requests in flight


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: params serve.host)")
    parser.add_argument("--port", type=int, help="port (default: params serve.port; 0: any)")


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    read_contract(params)  # a broken data contract is a usage error (exit 2), not a 422 later
    import uvicorn  # here, not at start-up: other commands need none of the server

    host = args.host or params.serve.host
    port = params.serve.port if args.port is None else args.port
    workers = params.serve.workers
    print(
        f"mlops serve: {workers} worker(s) on http://{host}:{port} "
        "(POST /predict, GET /health /ready /metrics /docs); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    # One OpenMP thread per worker unless the environment says otherwise: a single-row
    # predict gains nothing from a second thread, and idle OpenMP threads spin on the
    # core the event loop and the other workers need (measured: docs/performance.md).
    # Set before any worker loads scikit-learn's OpenMP runtime, which reads it once.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with _metrics_folder(), _exit_zero_on_sigterm():
        os.environ["MLOPS_SERVE_PARAMS"] = str(args.params)
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # the prediction log records every answer
            log_level="warning",
            timeout_keep_alive=int(max(params.serve.read_timeout_s, 1)),
            timeout_graceful_shutdown=GRACE_SECONDS,
        )


@contextlib.contextmanager
def _metrics_folder() -> Iterator[None]:
    """prometheus_client's multiprocess mode: every worker writes its values under one
    fresh folder (named before any worker imports prometheus_client), gone at exit."""
    with tempfile.TemporaryDirectory(prefix="mlops-serve-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


@contextlib.contextmanager
def _exit_zero_on_sigterm() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    handler it found: this one, so the command ends with exit 0 (a SIGTERM before
    uvicorn took over also ends it, at once and with 0)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
