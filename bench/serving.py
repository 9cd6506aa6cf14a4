"""Serving benchmark: batch prediction and the HTTP endpoint, beside the plain ways.

    python bench/serving.py [--requests 10000] [--baseline-requests 2000] [--clients 4]

Trains the demo model (params.yaml + the committed models/best_params.json) on
adult.data, puts it in production in a throwaway project, then scores the
held-back adult.test (16,281 rows):

* batch: ``mlops predict``'s work (contract check, predict, log lines) and the
  whole command, against calling the fitted Pipeline's predict_proba on the same
  rows, and a plain read-predict-write script;
* logging: the prediction log's cost per prediction (``log_lines``, then the
  append to the day's file), as a ratio to the prediction itself (contract-checked
  frame in, ``service.predict``), for one row and a 1,000-row batch;
* HTTP: ``mlops serve`` (FastAPI on uvicorn) on 127.0.0.1 with 1 and 2 workers under
  single-row requests from a load generator (keep-alive clients), with dynamic batching
  (params.yaml's defaults) and without (``serve.batch_max_rows: 1``: one request per
  model call), against a bare ThreadingHTTPServer handler that calls predict_proba with
  no contract check and no log.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.client
import io as io_module
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OrdinalEncoder  # noqa: E402

from mlops.data.ingestion import ingest  # noqa: E402
from mlops.features.imputation import ImputationPlan  # noqa: E402
from mlops.features.pipeline import TRUSTED_TYPES, build_pipeline  # noqa: E402
from mlops.io import dvc, files, modelfile, tables  # noqa: E402
from mlops.serving import production as serving_production  # noqa: E402
from mlops.serving import service  # noqa: E402
from mlops.stages import predict as predict_stage  # noqa: E402
from mlops.tasks import families  # noqa: E402
from tests.conftest import copy_project  # noqa: E402
from tests.model import reference_pipeline  # noqa: E402

BASELINE_SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pandas as pd
import skops.io as sio
model = sio.load(sys.argv[1], trusted=sio.get_untrusted_types(file=sys.argv[1]))
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["rows"]
        proba = model.predict_proba(pd.DataFrame(rows).astype(TYPES))[:, 1]
        body = json.dumps({"probability": proba.tolist()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
"""


def best_of(runs: int, work: Callable[[], Any]) -> float:
    """The median of ``runs`` timings (seconds), after one warm-up."""
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_project(folder: Path) -> tuple[Path, Any]:
    """A project whose models/production.json names the demo model, cached by DVC."""
    copy_project(folder)
    os.chdir(folder)
    params = files.load_params()
    raw = ingest(tables.read_source(params.data), params.data)
    plan = ImputationPlan.from_dict(files.read_json(ROOT / "models/imputation.json"))
    best = files.read_json(ROOT / "models/best_params.json")
    model = build_pipeline(plan, best["family"], best["params"], params.seed, params.data.task)
    model.fit(raw[plan.names()], raw[plan.target])
    staged = folder / "model.skops"
    modelfile.dump(staged, model)
    md5 = files.file_md5(staged)
    files.write_bytes(dvc.cache_file(md5), staged.read_bytes())
    record = {
        "version": "v1.0.0",
        "git_revision": "0" * 40,
        "model_md5": md5,
        "metrics": {},
        "promoted_at": "2026-01-01T00:00:00+00:00",
    }
    files.write_json(folder / "models/production.json", record)
    test = folder / "test.csv"
    test.write_bytes(gzip.decompress((folder / "data/external/adult/adult.test.gz").read_bytes()))
    return test, model


def bench_batch(test: Path, model: Any) -> None:
    params = files.load_params()
    contract = serving_production.read_contract(params)
    production = serving_production.load_production(params, contract.schema)
    frame = ingest(tables.read_source(params.data, test), params.data, require_target=False)
    features = frame[list(production.features)]
    rows = len(frame)

    def ours_in_memory() -> None:
        checked, problem = service.admit(frame, contract, records=False)
        assert problem is None, problem
        service.predict(production, checked)

    def ours_with_log() -> None:
        checked, _ = service.admit(frame, contract, records=False)
        predictions = service.predict(production, checked)
        ids = service.row_ids(service.new_request_id(), len(predictions), suffix_single=True)
        now = pd.Timestamp.now("UTC")
        service.log_lines(
            checked, predictions, production, "batch", now, request_ids=ids, latency_ms=1.0
        )

    def command() -> None:
        args = argparse.Namespace(params=Path("params.yaml"), input=test, output=Path("out.csv"))
        with contextlib.redirect_stdout(io_module.StringIO()):
            predict_stage.run(args)

    def plain_script() -> None:
        data = ingest(tables.read_source(params.data, test), params.data)
        proba = model.predict_proba(data[list(production.features)])[:, 1]
        data.assign(probability=proba).to_csv("plain.csv", index=False)

    direct = best_of(5, lambda: model.predict_proba(features))
    print(f"\nbatch prediction, {rows:,} rows (adult.test), median of 5 runs")
    print(f"  {'what':50} {'seconds':>8} {'rows/s':>9} {'vs predict':>10}")
    for name, seconds in [
        ("Pipeline.predict_proba (the model alone)", direct),
        ("mlops: contract check + predict", best_of(5, ours_in_memory)),
        ("mlops: contract check + predict + log lines", best_of(5, ours_with_log)),
        ("plain script: read, predict, write CSV", best_of(3, plain_script)),
        ("`mlops predict` (read, check, predict, write, log)", best_of(3, command)),
    ]:
        print(f"  {name:50} {seconds:8.3f} {rows / seconds:9,.0f} {seconds / direct:9.2f}x")


def bench_logging(test: Path) -> None:
    params = files.load_params()
    contract = serving_production.read_contract(params)
    production = serving_production.load_production(params, contract.schema)
    log = serving_production.PredictionLog(params)
    frame = ingest(tables.read_source(params.data, test), params.data, require_target=False)
    now = pd.Timestamp.now("UTC")
    print("\nprediction log cost per prediction, median of 50 runs (1 row) / 20 (1,000 rows)")
    columns = ("predict ms", "log_lines ms", "append ms", "log/predict")
    print(f"  {'rows':>5} " + " ".join(f"{name:>12}" for name in columns))
    for rows, runs in ((1, 50), (1000, 20)):
        checked, problem = service.admit(
            frame.head(rows), contract, records=rows == 1, features=production.features
        )
        assert problem is None, problem
        predictions = service.predict(production, checked)
        ids = service.row_ids(service.new_request_id(), rows, suffix_single=True)
        lines = functools.partial(
            service.log_lines, checked, predictions, production, "bench", now,
            request_ids=ids, latency_ms=1.0,
        )  # fmt: skip
        predict_s = best_of(runs, functools.partial(service.predict, production, checked))
        lines_s = best_of(runs, lines)
        append_s = best_of(runs, functools.partial(log.write, lines()))
        ratio = (lines_s + append_s) / predict_s
        print(
            f"  {rows:5} {predict_s * 1000:12.2f} {lines_s * 1000:12.2f} "
            f"{append_s * 1000:12.2f} {ratio:12.1%}"
        )


def plain_pipeline(plan: ImputationPlan, best: dict[str, Any], seed: int, task: Any) -> Any:
    """The plain scikit-learn way to the same estimator: one imputer for the numbers,
    one imputer and ordinal encoder for the categories, the same family and params."""
    numeric, categorical = plan.names("numeric"), plan.names("categorical")
    encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    columns = ColumnTransformer(
        [
            ("numeric", SimpleImputer(), numeric),
            (
                "categorical",
                make_pipeline(SimpleImputer(strategy="most_frequent"), encode),
                categorical,
            ),
        ]
    )
    positions = list(range(len(numeric), len(numeric) + len(categorical)))
    model = families.build_estimator(best["family"], task, best["params"], positions, seed)
    return make_pipeline(columns, model)


def bench_row(project: Path, test: Path, repeats: int) -> None:
    """One row and a batch through the saved pipeline, today's per-feature builder
    (issue 17's reference) and the plain scikit-learn pipeline, fitted on the same rows
    with the same estimator params, timed in turns so that load weighs on all alike."""
    params = files.load_params()
    raw = ingest(tables.read_source(params.data), params.data)
    plan = ImputationPlan.from_dict(files.read_json(ROOT / "models/imputation.json"))
    best = files.read_json(ROOT / "models/best_params.json")
    x, y = raw[plan.names()], raw[plan.target]
    old = reference_pipeline.build_pipeline(
        plan, best["family"], best["params"], params.seed, params.data.task
    )
    pipelines = {
        "saved pipeline (vectorised)": modelfile.load(project / "model.skops", TRUSTED_TYPES),
        "per-feature builder (before)": old.fit(x, y),
        "plain scikit-learn pipeline": plain_pipeline(
            plan, best, params.seed, params.data.task
        ).fit(x, y),
    }
    frame = ingest(tables.read_source(params.data, test), params.data, require_target=False)
    row = frame.iloc[[0]]
    print(
        f"\nsingle row and batch ({len(frame):,} rows of adult.test), predict_proba, "
        f"median of {repeats} turns (row) / 5 (batch); load average {os.getloadavg()[0]:.1f}"
    )
    one = _in_turns(pipelines, lambda p: p.predict_proba(row), repeats)
    batch = _in_turns(pipelines, lambda p: p.predict_proba(frame), 5)
    plain = "plain scikit-learn pipeline"
    print(f"  {'pipeline':30} {'row ms':>8} {'vs plain':>8} {'batch s':>8} {'vs plain':>8}")
    for name in pipelines:
        print(
            f"  {name:30} {one[name] * 1000:8.2f} {one[name] / one[plain]:7.2f}x "
            f"{batch[name]:8.3f} {batch[name] / batch[plain]:7.2f}x"
        )


def _in_turns(
    pipelines: dict[str, Any], work: Callable[[Any], Any], repeats: int
) -> dict[str, float]:
    """Per pipeline, the median seconds of ``work`` over ``repeats`` turns, after a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeats + 1):
        for name, pipeline in pipelines.items():
            start = time.perf_counter()
            work(pipeline)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(spent[1:]) for name, spent in times.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(cmd: list[str], port: int, probe: bytes, workers: int = 0) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers a valid request with 200 (``mlops
    serve`` answers 503 until its model is loaded) and, for ``mlops serve``, until
    ``workers`` distinct workers said they are ready: a worker still loading its model
    accepts nothing, so a load started then connects only to the others."""
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    ready: set[int] = set()
    while time.monotonic() < deadline:
        try:
            if len(ready) < workers:
                status, body = request(port, "GET", "/ready")
                if status == 200:
                    ready.add(json.loads(body)["worker"])
                    continue
            elif request(port, "POST", "/predict", probe)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"server on port {port} did not start")


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on a new connection: its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def load(port: int, bodies: list[bytes], requests: int, clients: int) -> dict[str, float]:
    """``requests`` single-row POSTs from ``clients`` keep-alive connections."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for n in range(index, requests, clients):
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=bodies[n % len(bodies)])
                reply = connection.getresponse()
                reply.read()
                ok = reply.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - start)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {"n": len(latencies), "errors": errors[0], "p50": cuts[49], "p99": cuts[98],
            "rps": len(latencies) / wall, "wall": wall}  # fmt: skip


def bench_http(project: Path, test: Path, model: Any, args: argparse.Namespace) -> None:
    params = files.load_params()
    frame = ingest(tables.read_source(params.data, test), params.data).drop(columns=["income"])
    records = json.loads(frame.head(2000).to_json(orient="records"))
    bodies = [json.dumps({"rows": [row]}).encode() for row in records]
    one_row = frame.head(1)
    model_alone = best_of(50, lambda: model.predict_proba(one_row))
    print(f"\nHTTP, single-row requests, {args.clients} keep-alive clients on 127.0.0.1")
    print(f"  the model alone: predict_proba on one row {model_alone * 1000:.1f} ms (median)")
    print(f"  {'server':42} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>7}")
    modes = [("batched", None)] + ([] if args.skip_unbatched else [("one at a time", 1)])
    for mode, max_rows in modes:
        rps = {}
        costs: dict[int, tuple[float, float]] = {}  # workers: (CPU s / request, rows / call)
        for workers in args.workers:
            set_serve(workers, max_rows)
            port = free_port()
            mlops = [str(Path(sys.executable).parent / "mlops"), "serve", "--port", str(port)]
            server = start(mlops, port, bodies[0], workers)
            seen: list[str] = []
            timer = threading.Timer(2.0, lambda: seen.append(spread(server, port)))  # noqa: B023
            timer.start()
            try:
                processes = [psutil.Process(), *tree(server)]
                before = [cpu_seconds(p) for p in processes]
                result = load(port, bodies, args.requests, args.clients)
                used = [cpu_seconds(p) - b for p, b in zip(processes, before, strict=True)]
                per_call = rows_per_call(port)
                timer.join()
            finally:
                server.terminate()
                server.wait()
            rps[workers] = result["rps"]
            costs[workers] = (sum(used[1:]) / result["n"], per_call)
            show(f"mlops serve, {workers} worker(s), {mode}", result)
            print(
                f"  {'':42} p50 / model alone: {result['p50'] / model_alone:.2f}x; "
                f"{per_call:.2f} rows per model call; connections per worker {seen[0]}"
            )
            available = result["wall"] * (os.cpu_count() or 1)
            print(
                f"  {'':42} CPU in the run: load generator {used[0] / available:.0%}, "
                f"server {sum(used[1:]) / available:.0%} of {os.cpu_count()} cores "
                f"x {result['wall']:.1f} s"
            )
        if len(rps) > 1:
            print(
                f"  {mode}: requests/s with {max(rps)} workers / 1: "
                f"{rps[max(rps)] / rps[min(rps)]:.2f}x"
            )
            ceiling(costs, args.clients)
    bench_bare(project, frame, bodies, args.baseline_requests, args.clients)


def bench_bare(
    project: Path, frame: pd.DataFrame, bodies: list[bytes], requests: int, clients: int
) -> None:
    """The same load on a bare ThreadingHTTPServer calling predict_proba."""
    baseline = project / "baseline_server.py"
    types = {c: "float64" if frame[c].dtype == "float64" else "str" for c in frame.columns}
    baseline.write_text(BASELINE_SERVER.replace("TYPES", repr(types)))
    cached = dvc.cache_file(files.read_json(Path("models/production.json"))["model_md5"])
    port = free_port()
    server = start([sys.executable, str(baseline), str(cached), str(port)], port, bodies[0])
    try:
        show(
            "bare handler: predict_proba only",
            load(port, bodies, requests, clients),
        )
    finally:
        server.terminate()
        server.wait()


def ceiling(costs: dict[int, tuple[float, float]], clients: int) -> None:
    """What the fewest and the most workers' runs say a model call and a request cost.

    A worker's CPU per batch of b requests is F + b * r: F for the model call whatever
    its rows (input checks and one pass over the trees dominate a few rows), r for each
    request's HTTP, validation and log line. Two runs whose batches differ in size give
    F and r. With ``clients`` waiting clients spread over w workers (one core each),
    each worker scores batches of clients / w, so the load cannot get more than
    clients / (F + clients / w * r) requests per second: a second worker halves the
    batches, and with them what a model call is shared by."""
    few, many = min(costs), max(costs)
    (c_few, b_few), (c_many, b_many) = costs[few], costs[many]
    if b_few < 1.2 * b_many:
        return  # batches of about one size: F and r cannot be told apart
    call = (c_many - c_few) / (1 / b_many - 1 / b_few)
    per_request = c_few - call / b_few
    best = {w: clients / (call + clients / w * per_request) for w in (few, many)}
    print(
        f"  {'':42} fit c = F / rows per call + r: a model call F = {call * 1000:.1f} ms, "
        f"a request r = {per_request * 1000:.1f} ms of CPU;\n"
        f"  {'':42} at most {best[many] / best[few]:.2f}x with {many} workers / {few} for "
        f"{clients} waiting clients, each worker on its own core"
    )


def set_serve(workers: int, max_rows: int | None) -> None:
    """params.yaml ``serve.workers`` (and ``serve.batch_max_rows``, unless None: the
    template's default) of the throwaway project (the working directory)."""
    document = files.read_yaml(Path("params.yaml"), "params")
    document["serve"]["workers"] = workers
    if max_rows is not None:
        document["serve"]["batch_max_rows"] = max_rows
    Path("params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def tree(server: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The server's processes: ``mlops serve`` and its workers."""
    main = psutil.Process(server.pid)
    return [main, *main.children(recursive=True)]


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds ``process`` used so far (0 once it is gone)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def spread(server: subprocess.Popen[bytes], port: int) -> str:
    """The load's connections per worker process, e.g. ``3+1``: uvicorn's workers share
    one listening socket, and which worker accepts a connection is the kernel's and the
    workers' race (a worker that takes more connections than the others serves more)."""
    main, *children = tree(server)
    workers = [p for p in children if "resource_tracker" not in " ".join(p.cmdline())]
    counts = []
    for process in workers or [main]:
        connections = process.net_connections(kind="tcp")
        counts.append(
            sum(c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in connections)
        )
    return "+".join(map(str, sorted(counts, reverse=True)))


def rows_per_call(port: int) -> float:
    """The mean rows per model call, from the server's ``mlops_batch_rows`` histogram."""
    text = request(port, "GET", "/metrics")[1].decode()
    found = dict(
        line.split(" ") for line in text.splitlines() if line.startswith("mlops_batch_rows_")
    )
    return float(found["mlops_batch_rows_sum"]) / float(found["mlops_batch_rows_count"])


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"  {label:42} {r['n']:8,.0f} {r['errors']:6.0f} {r['p50'] * 1000:7.1f} "
        f"{r['p99'] * 1000:7.1f} {r['rps']:7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--baseline-requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-logging", action="store_true")
    parser.add_argument("--skip-row", action="store_true")
    parser.add_argument(
        "--skip-unbatched", action="store_true", help="skip the runs with serve.batch_max_rows: 1"
    )
    parser.add_argument("--row-repeats", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        test, model = make_project(project)
        if not args.skip_row:
            bench_row(project, test, args.row_repeats)
        if not args.skip_batch:
            bench_batch(test, model)
        if not args.skip_logging:
            bench_logging(test)
        if not args.skip_http:
            bench_http(project, test, model, args)


if __name__ == "__main__":
    main()
