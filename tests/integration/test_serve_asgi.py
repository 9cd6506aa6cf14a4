"""What the ASGI server adds: generated schemas, readiness, metrics, workers, reloads
and a graceful SIGTERM (the guarantees kept from the earlier server: test_serve.py)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlops.cli import main
from mlops.io import files
from tests.integration.registry_project import VERSIONS, cache_file, manifest
from tests.integration.serve_support import Server, free_port, spawn, start, stop, wait_ready
from tests.integration.test_serve import ROW, gappy_rows

PROMOTED = VERSIONS[2]


@pytest.fixture
def server(repo: Path) -> Iterator[Server]:
    running = start(files.load_params())
    yield running
    stop(running)


def get(url: str, path: str) -> tuple[int, bytes]:
    address = urlsplit(url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=60)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def post(connection: http.client.HTTPConnection, rows: list[dict[str, Any]]) -> tuple[int, Any]:
    connection.request("POST", "/predict", body=json.dumps({"rows": rows}).encode())
    reply = connection.getresponse()
    return reply.status, json.loads(reply.read())


def connect(url: str) -> http.client.HTTPConnection:
    address = urlsplit(url)
    return http.client.HTTPConnection(str(address.hostname), address.port, timeout=60)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_the_docs_show_the_contract_columns(server: Server) -> None:
    status, body = get(server.url, "/openapi.json")
    assert status == 200
    schemas = json.loads(body)["components"]["schemas"]
    row = schemas["Row"]["properties"]
    sex = row["sex"]["anyOf"][0]  # nullable under missing_values: impute
    assert sex["enum"] == ["Female", "Male"]
    age = row["age"]["anyOf"][0]
    assert (age["type"], age["minimum"], age["maximum"]) == ("number", 17, 90)
    assert "income" not in schemas["Row"]["required"]  # the target is optional
    assert set(schemas["Prediction"]["properties"]) >= {"request_id", "probability", "prediction"}


def test_a_mismatching_request_gets_422_naming_the_field(repo: Path, server: Server) -> None:
    status, document = post(connect(server.url), [ROW, {**ROW, "education": "Kindergarten"}])
    assert status == 422
    assert "rows[1].education: Input should be '10th'" in document["error"]
    status, document = post(connect(server.url), [{**ROW, "hours_per_week": 120}])
    assert status == 422
    assert "rows[0].hours_per_week: Input should be less than or equal to 99" in document["error"]
    # source-style column names are normalised as ingest does
    renamed = {("Hours-Per-Week" if k == "hours_per_week" else k): v for k, v in ROW.items()}
    assert post(connect(server.url), [renamed])[0] == 200


def test_ready_is_503_while_the_model_file_is_broken(repo: Path) -> None:
    model = cache_file(repo, manifest(repo)["model_md5"])
    good = model.read_bytes()
    model.chmod(0o644)
    model.write_bytes(b"not a model")
    running = start(files.load_params())
    try:
        status, body = get(running.url, "/ready")
        assert status == 503
        reason = json.loads(body)["error"]
        assert "bytes do not match md5" in reason
        assert get(running.url, "/health")[0] == 200  # alive, not ready
        status, document = post(connect(running.url), [ROW])
        assert status == 503
        assert "not ready" in document["error"]
        # the right bytes back and the manifest rewritten: the worker becomes ready
        model.write_bytes(good)
        files.write_json(Path("models/production.json"), manifest(repo))
        deadline = time.monotonic() + 30
        while get(running.url, "/ready")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert post(connect(running.url), [ROW])[0] == 200
    finally:
        stop(running)


def test_metrics_count_requests_predictions_and_imputations(server: Server) -> None:
    connection = connect(server.url)
    rows = gappy_rows()
    status, document = post(connection, rows)
    assert status == 200
    assert post(connection, [{**ROW, "age": "old"}])[0] == 422
    status, text = get(server.url, "/metrics")
    assert status == 200
    got = samples(text)
    predict = (("path", "/predict"), ("status", "200"))
    assert got[("mlops_http_requests_total", predict)] == 1
    assert got[("mlops_http_errors_total", (("path", "/predict"), ("status", "422")))] == 1
    assert got[("mlops_http_request_duration_seconds_count", (("path", "/predict"),))] == 2
    by_class = {
        labels[0][1]: value
        for (name, labels), value in got.items()
        if name == "mlops_predictions_total"
    }
    answered = [str(p["prediction"]) for p in document["predictions"]]
    assert by_class == {label: answered.count(label) for label in set(answered)}
    assert got[("mlops_imputed_values_total", (("feature", "age"),))] == 1
    assert got[("mlops_imputed_values_total", (("feature", "education"),))] == 1
    assert got[("mlops_batch_rows_count", ())] == 1  # one model call, the refusal had none
    assert got[("mlops_batch_rows_sum", ())] == len(rows)
    assert got[("mlops_batch_rows_bucket", (("le", "16.0"),))] == 0
    assert got[("mlops_batch_rows_bucket", (("le", "32.0"),))] == 1
    model = (("model_md5", document_md5(server)), ("version", PROMOTED))
    assert got[("mlops_model_info", model)] == 1
    assert got[("mlops_model_ready", ())] == 1


def document_md5(server: Server) -> str:
    return str(json.loads(get(server.url, "/health")[1])["model_md5"])


# --- `mlops serve` itself: workers, reloads, SIGTERM -----------------------------------


def serve_workers(repo: Path, workers: int) -> None:
    params = repo / "params.yaml"
    document = yaml.safe_load(params.read_text())
    document["serve"]["workers"] = workers
    params.write_text(yaml.safe_dump(document, sort_keys=False))


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def two_workers(repo: Path) -> Iterator[tuple[Any, str]]:
    serve_workers(repo, 2)
    port = free_port()
    process = spawn(repo, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_two_workers_reload_a_rollback_under_load_without_a_failed_request(
    repo: Path, two_workers: tuple[Any, str]
) -> None:
    process, url = two_workers
    workers = [pid for pid in children(process.pid) if "serving" not in str(pid)]
    assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
    # Each worker runs scikit-learn's OpenMP on one thread unless the environment said
    # otherwise (idle OpenMP threads spin on the core another worker needs).
    for pid in workers:
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in item
        )
        assert environ.get("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS", "1")
    # /ready names the worker that answered: new connections reach both, once both are.
    answered: set[int] = set()
    deadline = time.monotonic() + 60
    while len(answered) < 2 and time.monotonic() < deadline:
        status, body = get(url, "/ready")
        if status == 200:
            answered.add(json.loads(body)["worker"])
    assert len(answered) == 2, answered
    assert answered <= set(workers), (answered, workers)
    failures: list[Any] = []
    versions: list[str] = []
    stop_load = threading.Event()

    def client() -> None:
        connection = connect(url)
        while not stop_load.is_set():
            try:
                status, document = post(connection, [ROW])
            except OSError as exc:
                failures.append(exc)
                connection = connect(url)
                continue
            if status != 200:
                failures.append((status, document))
            else:
                versions.append(document["model_version"])

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(1)
        assert main(["rollback"]) == 0  # production.json now names the previous version
        deadline = time.monotonic() + 60
        while versions[-20:] != [VERSIONS[1]] * 20 or len(versions) < 40:
            assert time.monotonic() < deadline, versions[-20:]
            time.sleep(0.2)
    finally:
        stop_load.set()
        for thread in clients:
            thread.join()
    assert failures == []
    assert versions[0] == PROMOTED
    assert versions[-1] == VERSIONS[1]
    # both workers' counts add up at /metrics (prometheus_client's multiprocess mode)
    got = samples(get(url, "/metrics")[1])
    answered = got[("mlops_http_requests_total", (("path", "/predict"), ("status", "200")))]
    assert answered == len(versions)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def test_sigterm_finishes_the_request_in_flight_and_exits_0(repo: Path) -> None:
    port = free_port()
    process = spawn(repo, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url)
        body = json.dumps({"rows": [ROW] * 50}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
            head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
            raw.sendall(head.encode() + body[:100])  # the request is in flight...
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)  # ...when the server is told to stop
            time.sleep(0.5)
            raw.sendall(body[100:])
            reply = b""
            while chunk := raw.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply and reply.endswith(b"}"):
                    break
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert process.wait(timeout=60) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")


def test_serve_keeps_running_unready_on_a_corrupt_manifest(repo: Path) -> None:
    (repo / "models/production.json").write_text(json.dumps(manifest(repo) | {"version": "1"}))
    running = start(files.load_params())
    try:
        status, body = get(running.url, "/ready")
    finally:
        stop(running)
    assert status == 503
    assert "corrupt production manifest: version" in json.loads(body)["error"]


def test_serve_refuses_to_start_on_a_broken_contract(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "data/schema.yaml").write_text("columns: [1, 2]\n")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "expected a pandera schema" in err
    assert "Traceback" not in err
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None
