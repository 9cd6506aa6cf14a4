"""Serving logic: request parsing, typing, the contract check, answers and the log."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops import io, serving
from mlops.serving import Contract, Production, RequestError
from mlops.validation import Failure, load_contract

ROOT = Path(__file__).resolve().parents[2]
ROW: dict[str, Any] = {
    "age": 39,
    "workclass": None,
    "fnlwgt": 77516.0,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 0,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}


@pytest.fixture(scope="module")
def schema() -> pa.DataFrameSchema:
    return load_contract(io.read_yaml(ROOT / "data/schema.yaml"), "schema.yaml")


@pytest.fixture(scope="module")
def contract(schema: pa.DataFrameSchema) -> Contract:
    return Contract(schema, "income", "fail", max_value_skew=0.01)


@pytest.fixture(scope="module")
def production(adult_sample: pd.DataFrame) -> Production:
    numeric = ["age", "hours_per_week", "education_num"]
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    model.fit(adult_sample[numeric], adult_sample["income"])
    return Production(model, "v1.0.0", "0" * 32, tuple(numeric), threshold=0.3)


def body(rows: Any) -> bytes:
    return json.dumps({"rows": rows}).encode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"rows": []}', "with >= 1 row"),
        (b'{"rows": [1]}', "expected a JSON object"),
        (b'{"data": [{}]}', "expected a JSON object"),
    ],
)
def test_parse_rows_refuses_malformed_bodies(raw: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as error:
        serving.parse_rows(raw)
    assert error.value.status == 400


def test_rows_to_frame_types_only_what_json_leaves_ambiguous(
    schema: pa.DataFrameSchema,
) -> None:
    frame = serving.rows_to_frame([ROW, {**ROW, "age": 40.5}], schema)
    assert frame["age"].dtype == "float64"  # JSON 39 is a number
    assert frame["education_num"].dtype == "float64"
    assert frame["workclass"].dtype == "str"  # all nulls take the contract's type
    assert frame["workclass"].isna().all()
    assert frame["education"].dtype == "str"
    mixed = serving.rows_to_frame([{**ROW, "age": "39"}], schema)
    assert mixed["age"].dtype != "float64"  # a string stays a string: the contract decides


def check(contract: Contract, row: dict[str, Any], records: bool = True) -> str | None:
    frame = serving.rows_to_frame([row], contract.schema)
    return serving.check_contract(frame, contract, records=records)[1]


def test_a_conforming_request_passes_with_or_without_the_target(contract: Contract) -> None:
    frame = serving.rows_to_frame([ROW], contract.schema)
    checked, problem = serving.check_contract(frame, contract, records=True)
    assert problem is None
    assert checked.equals(frame)
    assert check(contract, {**ROW, "income": 1}) is None  # one class is fine for one row
    assert "column 'income' failed isin" in str(check(contract, {**ROW, "income": 7}))


def test_a_null_nullable_column_is_a_table_problem_not_a_record_problem(
    contract: Contract,
) -> None:
    assert check(contract, ROW, records=True) is None
    assert "column 'workclass' failed all_null" in str(check(contract, ROW, records=False))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({k: v for k, v in ROW.items() if k not in ("age", "sex")}, "missing column(s): age, sex"),
        ({**ROW, "zip": "x"}, "unexpected column(s): zip"),
        ({**ROW, "age": "old"}, "column 'age' failed dtype('float64') in 1 row(s) (got str)"),
        ({**ROW, "race": None}, "column 'race' failed not_nullable"),
        ({**ROW, "age": 200}, "column 'age' failed in_range(17, 90) in 1 row(s) (e.g. [200.0])"),
    ],
)
def test_contract_breaches_are_described_in_one_line(
    contract: Contract, row: dict[str, Any], message: str
) -> None:
    problem = check(contract, row)
    assert problem is not None
    assert message in problem
    assert "\n" not in problem


def test_extra_columns_follow_the_policy(contract: Contract) -> None:
    frame = serving.rows_to_frame([{**ROW, "zip": "x"}], contract.schema)
    drop = Contract(contract.schema, "income", "drop", 0.01)
    dropped, problem = serving.check_contract(frame, drop, records=True)
    assert problem is None
    assert "zip" not in dropped.columns
    allow = Contract(contract.schema, "income", "allow", 0.01)
    allowed, problem = serving.check_contract(frame, allow, records=True)
    assert problem is None
    assert "zip" in allowed.columns


def test_describe_failures_caps_the_list() -> None:
    failures = [
        Failure(f"c{i}", "in_range", "value", 1, 1.0, True, (i,), "in_range(0, 1)")
        for i in range(8)
    ]
    assert serving.describe_failures(failures).endswith("; and 3 more")


def test_answer_predicts_at_the_configured_threshold(
    production: Production, contract: Contract
) -> None:
    rows = [ROW, {**ROW, "age": 60, "education_num": 16, "hours_per_week": 60}]
    inputs, predictions = serving.answer(body(rows), production, contract)
    direct = production.model.predict_proba(inputs[list(production.features)])[:, 1]
    assert predictions["probability"].tolist() == direct.tolist()
    assert predictions["prediction"].tolist() == [int(p >= 0.3) for p in direct]
    document = serving.response(production, predictions)
    assert document["model_version"] == "v1.0.0"
    assert document["predictions"][0] == {
        "probability": direct[0],
        "prediction": int(direct[0] >= 0.3),
    }
    json.dumps(document)  # plain JSON types only


def test_answer_refuses_a_contract_breach_with_422(
    production: Production, contract: Contract
) -> None:
    with pytest.raises(RequestError, match="does not match the data contract") as error:
        serving.answer(body([{**ROW, "age": "x"}]), production, contract)
    assert error.value.status == 422


def test_model_features_must_be_in_the_contract(
    production: Production, schema: pa.DataFrameSchema
) -> None:
    assert serving.model_features(production.model, schema, "m") == production.features
    narrow = schema.remove_columns(["age"])
    with pytest.raises(ValueError, match=r"columns the data contract lacks: \['age'\]"):
        serving.model_features(production.model, narrow, "m")
    with pytest.raises(ValueError, match="does not record the columns"):
        serving.model_features(object(), schema, "m")


def test_log_lines_are_one_json_object_per_row(production: Production, contract: Contract) -> None:
    rows = [ROW, {**ROW, "age": 50}]
    inputs, predictions = serving.answer(body(rows), production, contract)
    at = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    text = serving.log_lines(inputs, predictions, production, "serve", at)
    entries = [json.loads(line) for line in text.splitlines()]
    assert text.endswith("\n")
    assert len(entries) == 2
    assert entries[1]["logged_at"] == "2026-03-04T05:06:07.890+00:00"
    assert entries[1]["model_version"] == "v1.0.0"
    assert entries[1]["source"] == "serve"
    assert entries[1]["inputs"]["age"] == 50.0
    assert entries[0]["inputs"]["workclass"] is None
    assert entries[1]["probability"] == predictions["probability"].iloc[1]
    assert entries[1]["prediction"] == predictions["prediction"].iloc[1]


def test_log_names_and_retention() -> None:
    assert serving.log_name(date(2026, 3, 4)) == "predictions-2026-03-04.jsonl"
    names = [
        "predictions-2026-03-04.jsonl",
        "predictions-2026-02-03.jsonl",  # 30 days before: kept with keep_days=30
        "predictions-2026-02-02.jsonl",  # 31 days before: expired
        "predictions-2025-12-31.jsonl",
        "notes.txt",
        "predictions-2026-13-01.json",
    ]
    expired = serving.expired_logs(names, date(2026, 3, 4), keep_days=30)
    assert expired == ["predictions-2026-02-02.jsonl", "predictions-2025-12-31.jsonl"]
    assert serving.expired_logs(names, date(2026, 3, 4), keep_days=1) == names[1:4]
