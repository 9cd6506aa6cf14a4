"""`mlops serve`: a real HTTP server on 127.0.0.1 answering with the production model."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from mlops import io
from mlops.cli import main
from mlops.modeling import TRUSTED_TYPES
from mlops.stages.serve import Server, make_server
from tests.integration.registry_project import VERSIONS, cache_file, clone, manifest, three_versions

ROW: dict[str, Any] = {
    "age": 39,
    "workclass": None,
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 2174.5,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}


@pytest.fixture(scope="session")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return three_versions(tmp_path_factory)


@pytest.fixture
def repo(released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = clone(released, tmp_path / "repo")
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def server(repo: Path) -> Iterator[Server]:
    running = make_server(io.load_params(), host="127.0.0.1", port=0)
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield running
    running.app.watcher.stop()
    running.shutdown()
    running.server_close()


def call(
    server: Server, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    try:
        connection.request(method, path, body=body)
        reply = connection.getresponse()
        assert reply.getheader("Content-Type") == "application/json"
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def predict(server: Server, rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return call(server, "POST", "/predict", json.dumps({"rows": rows}).encode())


def expected_probability(repo: Path, rows: list[dict[str, Any]]) -> list[float]:
    model = io.load_model_bytes(
        cache_file(repo, manifest(repo)["model_md5"]).read_bytes(), TRUSTED_TYPES, "test"
    )
    frame = pd.DataFrame(rows)
    numbers = [c for c in frame.columns if c not in ("workclass",) and frame[c].dtype != "str"]
    frame = frame.astype(dict.fromkeys(numbers, "float64")).astype({"workclass": "str"})
    return [float(p) for p in model.predict_proba(frame)[:, 1]]


def test_health_names_the_production_model(repo: Path, server: Server) -> None:
    status, document = call(server, "GET", "/health")
    assert status == 200
    assert document == {
        "status": "ok",
        "model_version": VERSIONS[2],
        "model_md5": manifest(repo)["model_md5"],
    }


def test_predicts_rows_and_logs_them(repo: Path, server: Server) -> None:
    rows = [ROW, {**ROW, "age": 52, "capital_gain": 15024}]
    status, document = predict(server, rows)
    assert status == 200
    assert document["model_version"] == VERSIONS[2]
    expected = expected_probability(repo, rows)
    assert [p["probability"] for p in document["predictions"]] == pytest.approx(expected)
    assert [p["prediction"] for p in document["predictions"]] == [int(p >= 0.5) for p in expected]
    logs = list((repo / "logs/predictions").glob("predictions-*.jsonl"))
    assert len(logs) == 1
    logged = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert [entry["source"] for entry in logged] == ["serve", "serve"]
    assert logged[1]["inputs"]["age"] == 52.0
    assert logged[0]["inputs"]["workclass"] is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rows": [{k: v for k, v in ROW.items() if k != "age"}]}, 422, "missing column(s): age"),
        ({"rows": [{**ROW, "salary": 1}]}, 422, "unexpected column(s): salary"),
        ({"rows": [{**ROW, "age": "old"}]}, 422, "column 'age' failed dtype('float64')"),
        ({"rows": [{**ROW, "sex": 1}]}, 422, "column 'sex' failed dtype"),
        ({"rows": [{**ROW, "education": None}]}, 422, "column 'education' failed not_nullable"),
        ({"rows": [ROW, {**ROW, "age": True}]}, 422, "column 'age' failed dtype"),
        ({"rows": []}, 400, 'expected a JSON object {"rows"'),
        ([ROW], 400, 'expected a JSON object {"rows"'),
    ],
)
def test_bad_requests_get_a_json_error(
    repo: Path, server: Server, body: Any, status: int, message: str
) -> None:
    got, document = call(server, "POST", "/predict", json.dumps(body).encode())
    assert got == status
    assert list(document) == ["error"]
    assert message in document["error"]
    assert not (repo / "logs").exists()


def test_malformed_bodies(server: Server) -> None:
    assert call(server, "POST", "/predict", b"{not json")[0] == 400
    assert call(server, "POST", "/predict", b"\xff\xfe")[0] == 400


def test_an_oversized_body_gets_413(server: Server) -> None:
    limit = io.load_params().serve.max_body_bytes
    status, document = call(server, "POST", "/predict", b" " * (limit + 1))
    assert status == 413
    assert f"exceeds {limit} bytes" in document["error"]


def test_a_body_without_length_gets_411(server: Server) -> None:
    address = urlsplit(server.url)
    with socket.create_connection((str(address.hostname), int(address.port or 0))) as raw:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunks = []
        while chunk := raw.recv(4096):  # the server closes the connection after answering
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 411")
    assert "Content-Length header is required" in reply


def test_unknown_endpoints_get_404(server: Server) -> None:
    assert call(server, "GET", "/nope")[0] == 404
    assert call(server, "POST", "/health", b"{}")[0] == 404


def test_the_server_keeps_answering_after_errors_on_one_connection(server: Server) -> None:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    for body, status in [(b"{}", 400), (json.dumps({"rows": [ROW]}).encode(), 200)]:
        connection.request("POST", "/predict", body=body)
        reply = connection.getresponse()
        reply.read()
        assert reply.status == status
    connection.close()


def test_a_corrupt_manifest_keeps_the_current_model_serving(repo: Path, server: Server) -> None:
    (repo / "models/production.json").write_text("{broken")
    deadline = time.monotonic() + 20
    while "warning" not in call(server, "GET", "/health")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status, document = predict(server, [ROW])
    assert status == 200
    assert document["model_version"] == VERSIONS[2]


def test_serve_refuses_to_start_on_a_corrupt_manifest(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "models/production.json").write_text(json.dumps(manifest(repo) | {"version": "1"}))
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "corrupt production manifest: version" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
