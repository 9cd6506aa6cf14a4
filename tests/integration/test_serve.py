"""`mlops serve`'s application on a real uvicorn on 127.0.0.1, answering with the
production model (in this process: one server per test, started in a thread)."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY
from urllib.parse import urlsplit

import pandas as pd
import pytest

from mlops.config import Params
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile
from mlops.serving import service as service_module
from tests.integration.registry_project import VERSIONS, cache_file, manifest
from tests.integration.serve_support import Server, start, stop

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


@pytest.fixture
def server(repo: Path) -> Iterator[Server]:
    running = start(files.load_params())
    yield running
    stop(running)


def call(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        assert reply.getheader("Content-Type") == "application/json"
        document = json.loads(reply.read())
        # A POST's answer names its request id in a header (an error: in its body too).
        header = reply.getheader("X-Request-ID")
        assert (header is not None) == (method == "POST")
        assert document.get("request_id", header) == header
        return reply.status, document
    finally:
        connection.close()


def log_records(repo: Path) -> list[dict[str, Any]]:
    """Every record of the prediction log, oldest first."""
    logs = sorted((repo / "logs/predictions").glob("predictions-*.jsonl"))
    return [json.loads(line) for log in logs for line in log.read_text().splitlines()]


def predict(server: Server, rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return call(server, "POST", "/predict", json.dumps({"rows": rows}).encode())


def expected_probability(repo: Path, rows: list[dict[str, Any]]) -> list[float]:
    model = modelfile.load_bytes(
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
    # One new id per request, suffixed per row, the same in the answer and the log.
    ids = [p["request_id"] for p in document["predictions"]]
    base = ids[0].removesuffix("-0")
    assert len(base) == 32
    assert ids == [f"{base}-0", f"{base}-1"]
    assert [entry["request_id"] for entry in logged] == ids
    assert logged[0]["latency_ms"] == logged[1]["latency_ms"] > 0  # the request's time
    _, again = predict(server, [ROW])
    assert again["predictions"][0]["request_id"] not in (base, *ids)  # a single row: no suffix
    assert len(again["predictions"][0]["request_id"]) == 32


def test_a_client_request_id_is_honoured(repo: Path, server: Server) -> None:
    body = json.dumps({"rows": [ROW, ROW]}).encode()
    status, document = call(server, "POST", "/predict", body, {"X-Request-ID": "order-17"})
    assert status == 200
    assert [p["request_id"] for p in document["predictions"]] == ["order-17-0", "order-17-1"]
    one = json.dumps({"rows": [ROW]}).encode()
    status, document = call(server, "POST", "/predict", one, {"X-Request-ID": "order-18"})
    assert document["predictions"][0]["request_id"] == "order-18"
    status, document = call(server, "POST", "/predict", one, {"X-Request-ID": "a b"})
    assert status == 400
    assert "X-Request-ID 'a b' is not 1-128 characters" in document["error"]
    logged = log_records(repo)
    assert [e["request_id"] for e in logged] == ["order-17-0", "order-17-1", "order-18", ANY]
    assert logged[-1] == {
        "logged_at": ANY,
        "source": "serve",
        "model_version": VERSIONS[2],
        "request_id": document["request_id"],
        "refused": True,
        "reason": document["error"],
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rows": [{k: v for k, v in ROW.items() if k != "age"}]}, 422, "rows[0].age: Field req"),
        ({"rows": [{**ROW, "salary": 1}]}, 422, "rows[0].salary: Extra inputs are not permitted"),
        ({"rows": [{**ROW, "age": "old"}]}, 422, "rows[0].age: Input should be a valid number"),
        ({"rows": [{**ROW, "sex": 1}]}, 422, "rows[0].sex: Input should be 'Female' or 'Male'"),
        # not a model feature: nothing imputes it, so the contract's nullable: false holds
        ({"rows": [{**ROW, "race": None}]}, 422, "rows[0].race: null, but the data contract"),
        ({"rows": [ROW, {**ROW, "age": True}]}, 422, "rows[1].age: Input should be a valid num"),
        ({"rows": []}, 422, "rows: List should have at least 1 item"),
        ([ROW], 422, "body: Input should be a valid dictionary"),
    ],
)
def test_bad_requests_get_a_json_error(
    repo: Path, server: Server, body: Any, status: int, message: str
) -> None:
    got, document = call(server, "POST", "/predict", json.dumps(body).encode())
    assert got == status
    assert list(document) == ["error", "request_id"]
    assert message in document["error"]
    [refused] = log_records(repo)  # one record, without the rows that were refused
    assert refused["refused"] is True
    assert refused["reason"] == document["error"]
    assert refused["request_id"] == document["request_id"]
    assert "inputs" not in refused


def test_malformed_bodies(repo: Path, server: Server) -> None:
    assert call(server, "POST", "/predict", b"{not json")[0] == 400
    assert call(server, "POST", "/predict", b"\xff\xfe")[0] == 400
    reasons = [e["reason"] for e in log_records(repo)]
    assert reasons == ["request body is not valid JSON"] * 2


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "application/json"]
)
def test_a_json_body_is_read_whatever_its_content_type_says(
    server: Server, content_type: str
) -> None:
    """`curl -d` and urllib label a body as a form; the server reads it as JSON."""
    body = json.dumps({"rows": [ROW]}).encode()
    status, document = call(server, "POST", "/predict", body, {"Content-Type": content_type})
    assert status == 200, document
    assert len(document["predictions"]) == 1
    form = call(server, "POST", "/predict", b"rows=1", {"Content-Type": content_type})
    assert form[0] == 400


def test_an_oversized_body_gets_413(repo: Path, server: Server) -> None:
    limit = files.load_params().serve.max_body_bytes
    status, document = call(server, "POST", "/predict", b" " * (limit + 1))
    assert status == 413
    assert f"exceeds {limit} bytes" in document["error"]
    assert [e["reason"] for e in log_records(repo)] == [document["error"]]


def test_a_body_without_length_gets_411(repo: Path, server: Server) -> None:
    address = urlsplit(server.url)
    with socket.create_connection((str(address.hostname), int(address.port or 0))) as raw:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunks = []
        while chunk := raw.recv(4096):  # the server closes the connection after answering
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 411")
    assert "Content-Length header is required" in reply
    assert [e["reason"] for e in log_records(repo)] == ["a Content-Length header is required"]


def test_unknown_endpoints_get_404_and_wrong_methods_405(server: Server) -> None:
    assert call(server, "GET", "/nope")[0] == 404
    assert call(server, "POST", "/health", b"{}")[0] == 405


def test_the_server_keeps_answering_after_errors_on_one_connection(server: Server) -> None:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    for body, status in [(b"{}", 422), (json.dumps({"rows": [ROW]}).encode(), 200)]:
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


# --- a feature missing in production: imputed and flagged, or refused -----------------------


def with_serve(**changes: Any) -> Params:
    params = files.load_params()
    return params.model_copy(update={"serve": params.serve.model_copy(update=changes)})


def gappy_rows() -> list[dict[str, Any]]:
    """20 rows, age missing in one (5 %) and education (categorical) in another."""
    rows = [{**ROW, "age": 20 + i, "workclass": "Private"} for i in range(20)]
    rows[3] = {**rows[3], "age": None}
    rows[11] = {**rows[11], "education": None}
    return rows


def test_missing_feature_values_are_imputed_counted_and_logged(repo: Path, server: Server) -> None:
    rows = gappy_rows()
    status, document = predict(server, rows)
    assert status == 200, document
    assert document["imputed"] == {"age": 1, "education": 1}
    flags = [p.get("imputed") for p in document["predictions"]]
    assert flags == [None] * 3 + [["age"]] + [None] * 7 + [["education"]] + [None] * 8
    # the pipeline's own answer for the same rows, gaps included
    model = modelfile.load_bytes(
        cache_file(repo, manifest(repo)["model_md5"]).read_bytes(), TRUSTED_TYPES, "test"
    )
    frame = pd.DataFrame(rows).astype({"age": "float64", "education": "str"})
    frame = frame.astype({c: "float64" for c in frame.columns if frame[c].dtype == "int64"})
    expected = model.predict_proba(frame[list(model.feature_names_in_)])[:, 1]
    assert [p["probability"] for p in document["predictions"]] == pytest.approx(expected)
    # rows without gaps are answered as they are without the others
    complete = [row for i, row in enumerate(rows) if i not in (3, 11)]
    alone = predict(server, complete)[1]["predictions"]
    kept = [p for i, p in enumerate(document["predictions"]) if i not in (3, 11)]
    assert [p["probability"] for p in kept] == [p["probability"] for p in alone]
    logs = list((repo / "logs/predictions").glob("predictions-*.jsonl"))
    logged = [json.loads(line) for line in logs[0].read_text().splitlines()][:20]
    assert [entry["imputed"] for entry in logged] == [
        ["age"] if i == 3 else ["education"] if i == 11 else [] for i in range(20)
    ]
    assert logged[3]["inputs"]["age"] is None


def test_refuse_keeps_refusing_missing_feature_values(repo: Path) -> None:
    running = start(with_serve(missing_values="refuse"))
    try:
        status, document = predict(running, gappy_rows())
    finally:
        stop(running)
    assert status == 422
    assert "rows[3].age: Input should be a valid number" in document["error"]
    assert [e["refused"] for e in log_records(repo)] == [True]


def test_a_missing_column_is_still_refused_under_impute(repo: Path, server: Server) -> None:
    rows = [{k: v for k, v in row.items() if k != "age"} for row in gappy_rows()]
    status, document = predict(server, rows)
    assert status == 422
    assert "rows[0].age: Field required" in document["error"]


# --- robustness: hostile or broken clients ----------------------------------------------------


def raw_exchange(server: Server, request: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are, read until the server closes the connection."""
    address = urlsplit(server.url)
    with socket.create_connection((str(address.hostname), int(address.port or 0))) as raw:
        raw.settimeout(timeout)
        raw.sendall(request)
        chunks = []
        while chunk := raw.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_json_nested_5000_deep_gets_a_400(server: Server) -> None:
    deep = b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, document = call(server, "POST", "/predict", deep)
    assert status == 400
    assert list(document) == ["error", "request_id"]
    assert "not valid JSON" in document["error"]
    assert "\n" not in document["error"]


def test_a_huge_bad_value_is_quoted_by_a_short_prefix(server: Server) -> None:
    status, document = predict(server, [{**ROW, "sex": "x" * 500_000}])
    assert status == 422
    assert "rows[0].sex: Input should be 'Female' or 'Male'" in document["error"]
    assert len(document["error"]) < 500
    status, document = call(server, "GET", "/" + "p" * 10_000)
    assert status == 404
    assert len(document["error"]) < 200


def test_a_content_length_too_long_for_int_is_refused(server: Server) -> None:
    """Refused by the HTTP parser itself (uvicorn's 400, before the application)."""
    reply = raw_exchange(
        server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    )
    assert reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413"))
    assert predict(server, [ROW])[0] == 200


def test_a_body_shorter_than_its_length_gets_408_and_others_are_served(repo: Path) -> None:
    running = start(with_serve(read_timeout_s=0.5))
    try:
        started = time.monotonic()
        reply = raw_exchange(
            running, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}"
        )
        assert time.monotonic() - started < 5
        assert reply.startswith(b"HTTP/1.1 408")
        assert b"not received within 0.5 s" in reply
        assert predict(running, [ROW])[0] == 200
        refused, answered = log_records(repo)
        assert refused["reason"] == "request body not received within 0.5 s"
        assert "refused" not in answered
    finally:
        stop(running)


def test_a_client_that_hangs_up_costs_one_line_and_no_traceback(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    address = urlsplit(server.url)
    payload = json.dumps({"rows": [ROW] * 200}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )
    err = ""
    for _ in range(5):  # each time the server answers a client that reset the connection
        raw = socket.create_connection((str(address.hostname), int(address.port or 0)))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.sendall(request)
        raw.close()  # linger 0: a reset, before the answer is written
        time.sleep(0.3)
        err += capsys.readouterr().err
    assert predict(server, [ROW])[0] == 200  # still serving
    err += capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") <= 5


def test_every_model_feature_can_be_imputed(repo: Path, server: Server) -> None:
    """Features complete in training too: the fitted pipeline has an imputer for each."""
    model = modelfile.load_bytes(
        cache_file(repo, manifest(repo)["model_md5"]).read_bytes(), TRUSTED_TYPES, "test"
    )
    features = [str(name) for name in model.feature_names_in_]
    rows = [{**ROW, "workclass": "Private", name: None} for name in features]
    rows.append({**ROW, **dict.fromkeys(features)})  # every feature missing at once
    status, document = predict(server, rows)
    assert status == 200, document
    assert document["imputed"] == dict.fromkeys(features, 2)
    assert [p["imputed"] for p in document["predictions"]] == [[f] for f in features] + [features]
    assert all(0 <= p["probability"] <= 1 for p in document["predictions"])


# --- dynamic batching: requests queued together share one model call ------------------------


def hold_first_call(
    server: Server, monkeypatch: pytest.MonkeyPatch, queued: int, fail_age: float | None = None
) -> list[int]:
    """Record the rows of each model call; the first is held until ``queued`` requests
    wait behind it; a call with a row of age ``fail_age`` raises, as a model might."""
    svc = server.server.config.app.state.service
    calls: list[int] = []
    original = service_module.predict

    def recording(production: Any, frame: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(frame))
        if len(calls) == 1:
            deadline = time.monotonic() + 60
            while svc._batcher.queued < queued:
                assert time.monotonic() < deadline, "the requests were not queued"
                time.sleep(0.005)
        if fail_age is not None and (frame["age"] == fail_age).any():
            raise ValueError("the model cannot score this row")
        return original(production, frame)

    monkeypatch.setattr(service_module, "predict", recording)
    return calls


def send_behind_one(
    server: Server, calls: list[int], later: list[tuple[list[dict[str, Any]], dict[str, str]]]
) -> dict[int, tuple[int, Any]]:
    """One request, then ``later`` (each on its own connection) while its call is held;
    every answer (status, body) by position in ``later``."""
    first = threading.Thread(target=predict, args=(server, [ROW]))
    first.start()
    deadline = time.monotonic() + 60
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    answers: dict[int, tuple[int, Any]] = {}

    def send(index: int) -> None:
        rows, headers = later[index]
        address = urlsplit(server.url)
        connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=60)
        connection.request("POST", "/predict", json.dumps({"rows": rows}).encode(), headers)
        reply = connection.getresponse()
        raw = reply.read()
        try:
            answers[index] = reply.status, json.loads(raw)
        except ValueError:
            answers[index] = reply.status, raw.decode()
        connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(later))]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(60)
    return answers


def test_requests_queued_together_share_a_call_and_are_answered_as_if_alone(
    repo: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = hold_first_call(server, monkeypatch, queued=4)
    gappy = gappy_rows()
    later: list[tuple[list[dict[str, Any]], dict[str, str]]] = [
        ([{**ROW, "age": 52, "capital_gain": 15024}], {}),
        (gappy[2:5], {}),  # three rows, one with age imputed
        ([{**ROW, "income": 1}], {}),  # with the target: other columns, so its own call
        ([{**ROW, "age": 61}], {"X-Request-ID": "client-7"}),
    ]
    answers = send_behind_one(server, calls, later)
    # The first call scored the first request; the next two all the others: one call for
    # the requests without the target (1 + 3 + 1 rows) and one for the one with it.
    assert calls[0] == 1
    assert sorted(calls[1:]) == [1, 5]
    logged = log_records(repo)
    for index, (rows, headers) in enumerate(later):
        status, together = answers[index]
        assert status == 200, together
        alone_status, alone = call(
            server, "POST", "/predict", json.dumps({"rows": rows}).encode(), headers
        )
        assert alone_status == 200
        strip = [{k: v for k, v in p.items() if k != "request_id"} for p in together["predictions"]]
        assert strip == [
            {k: v for k, v in p.items() if k != "request_id"} for p in alone["predictions"]
        ]
        assert together["imputed"] == alone["imputed"]
        ids = [p["request_id"] for p in together["predictions"]]
        mine = [entry for entry in logged if entry["request_id"] in ids]
        assert [entry["request_id"] for entry in mine] == ids  # one log line per row, in order
        assert len({entry["latency_ms"] for entry in mine}) == 1
        assert [entry["inputs"].get("income") for entry in mine] == [
            row.get("income") for row in rows
        ]
    assert answers[3][1]["predictions"][0]["request_id"] == "client-7"
    assert answers[1][1]["imputed"] == {"age": 1}
    assert "income" not in log_records(repo)[0]["inputs"]


def test_a_request_the_model_fails_on_fails_alone_not_its_batch(
    repo: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = hold_first_call(server, monkeypatch, queued=3, fail_age=77)
    later: list[tuple[list[dict[str, Any]], dict[str, str]]] = [
        ([{**ROW, "age": 52}], {}),
        ([{**ROW, "age": 77}], {}),  # in the contract, but the model fails on it
        ([{**ROW, "age": 61}], {}),
    ]
    answers = send_behind_one(server, calls, later)
    assert answers[0][0] == answers[2][0] == 200
    assert answers[1][0] == 500
    # the batch of three failed, then each was scored alone
    assert calls == [1, 3, 1, 1, 1]
    answered = {entry["inputs"]["age"] for entry in log_records(repo) if not entry.get("refused")}
    assert answered == {39.0, 52.0, 61.0}
