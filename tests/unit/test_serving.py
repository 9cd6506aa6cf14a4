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

from mlops import serving
from mlops.io import files
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
    return load_contract(files.read_yaml(ROOT / "data/schema.yaml"), "schema.yaml")


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


# --- missing feature values: imputed by the model, or refused -----------------------------

NUMERIC = ["age", "hours_per_week", "education_num"]


@pytest.fixture(scope="module")
def imputing(adult_sample: pd.DataFrame) -> Production:
    """A model that imputes its numeric features and one-hot encodes ``education``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    features = [*NUMERIC, "education"]
    steps = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]),
                NUMERIC,
            ),
            (
                "text",
                Pipeline(
                    [
                        ("fill", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                ["education"],
            ),
        ]
    )
    model = Pipeline([("prepare", steps), ("model", LogisticRegression(max_iter=1000))])
    model.fit(adult_sample[features], adult_sample["income"])
    return Production(model, "v1.0.0", "0" * 32, tuple(features), threshold=0.3)


def with_policy(contract: Contract, policy: str) -> Contract:
    return Contract(contract.schema, "income", "fail", 0.01, policy)  # type: ignore[arg-type]


def test_a_null_feature_is_no_breach_under_impute_and_one_under_refuse(
    contract: Contract, imputing: Production
) -> None:
    frame = serving.rows_to_frame(
        [{**ROW, "age": None}, {**ROW, "education": None}], contract.schema
    )
    features = imputing.features
    impute, refuse = with_policy(contract, "impute"), with_policy(contract, "refuse")
    assert serving.check_contract(frame, impute, records=True, features=features)[1] is None
    refused = serving.check_contract(frame, refuse, records=True, features=features)[1]
    assert "column 'age' failed not_nullable" in str(refused)
    assert "column 'education' failed not_nullable" in str(refused)
    # a batch (records=False) too: 1 row in 2 is far above max_value_skew
    batch = frame.assign(workclass="Private")  # a column null in every row stays a breach
    assert serving.check_contract(batch, impute, records=False, features=features)[1] is None
    assert "not_nullable" in str(
        serving.check_contract(batch, refuse, records=False, features=features)[1]
    )


def test_impute_relaxes_nullability_of_the_model_features_only(
    contract: Contract, imputing: Production
) -> None:
    impute = with_policy(contract, "impute")
    features = imputing.features
    for row, message in [
        ({**ROW, "race": None}, "column 'race' failed not_nullable"),  # not a feature
        ({k: v for k, v in ROW.items() if k != "age"}, "missing column(s): age"),
        ({**ROW, "age": "old"}, "column 'age' failed dtype"),
        ({**ROW, "age": 200}, "column 'age' failed in_range"),
    ]:
        frame = serving.rows_to_frame([row], contract.schema)
        problem = serving.check_contract(frame, impute, records=True, features=features)[1]
        assert message in str(problem)


def test_answer_imputes_a_missing_feature_and_names_it(
    contract: Contract, imputing: Production
) -> None:
    rows = [ROW, {**ROW, "age": None}, {**ROW, "age": None, "education": None}, {**ROW, "age": 50}]
    inputs, predictions = serving.answer(body(rows), imputing, with_policy(contract, "impute"))
    features = inputs[list(imputing.features)]
    direct = imputing.model.predict_proba(features)[:, 1]
    assert predictions["probability"].tolist() == direct.tolist()
    alone = imputing.model.predict_proba(features.iloc[[0, 3]])[:, 1]
    assert predictions["probability"].iloc[[0, 3]].tolist() == alone.tolist()
    document = serving.response(imputing, predictions)
    assert document["imputed"] == {"age": 2, "education": 1}
    assert [p.get("imputed") for p in document["predictions"]] == [
        None,
        ["age"],
        ["age", "education"],
        None,
    ]
    json.dumps(document)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    logged = [
        json.loads(line)
        for line in serving.log_lines(inputs, predictions, imputing, "serve", at).splitlines()
    ]
    assert [entry["imputed"] for entry in logged] == [[], ["age"], ["age", "education"], []]
    assert logged[1]["inputs"]["age"] is None


def test_answer_refuses_a_missing_feature_under_refuse(
    contract: Contract, imputing: Production
) -> None:
    with pytest.raises(RequestError, match="column 'age' failed not_nullable") as error:
        serving.answer(body([{**ROW, "age": None}]), imputing, with_policy(contract, "refuse"))
    assert error.value.status == 422


def test_a_row_without_gaps_names_no_imputed_feature(
    contract: Contract, production: Production
) -> None:
    _, predictions = serving.answer(body([ROW]), production, contract)
    assert serving.response(production, predictions)["imputed"] == {}
    assert predictions["imputed"].tolist() == [""]


def test_serve_missing_values_is_impute_or_refuse(root: Path) -> None:
    from mlops.config import parse_params
    from mlops.errors import UsageError

    document = files.read_yaml(root / "params.yaml")
    assert parse_params(document).serve.missing_values == "impute"
    bad = {**document, "serve": {**document["serve"], "missing_values": "guess"}}
    with pytest.raises(UsageError, match=r"serve\.missing_values: .*'impute' or 'refuse'") as error:
        parse_params(bad)
    assert "\n" not in str(error.value)
    for value in (0, -1.0):
        slow = {**document, "serve": {**document["serve"], "read_timeout_s": value}}
        with pytest.raises(UsageError, match=r"serve\.read_timeout_s"):
            parse_params(slow)


# --- robustness: what a client sends is never echoed whole, never crashes ------------------


def test_deeply_nested_json_is_a_400() -> None:
    deep = b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(RequestError, match="nested too deeply") as error:
        serving.parse_rows(deep)
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("row", "quoted"),
    [
        ({**ROW, "sex": "x" * 100_000}, "column 'sex' failed isin"),
        ({**ROW, "y" * 100_000: 1}, "unexpected column(s): yyy"),
    ],
)
def test_a_huge_bad_value_is_quoted_by_a_short_prefix(
    contract: Contract, row: dict[str, Any], quoted: str
) -> None:
    problem = str(check(contract, row))
    assert quoted in problem
    assert len(problem) < 400
    assert "..." in problem
