"""Serving logic: request parsing, typing, the contract check, answers and the log."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest
import yaml
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops.data.contract import Failure, load_contract
from mlops.io import files
from mlops.monitoring.logs import Window, read_window
from mlops.serving import service
from mlops.serving.app import create_app
from mlops.serving.service import Contract, Production, RequestError
from mlops.tasks.task import get_task

BINARY = get_task("binary")

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
    return Production(model, "v1.0.0", "0" * 32, tuple(numeric), BINARY, threshold=0.3)


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
        service.parse_rows(raw)
    assert error.value.status == 400


def test_rows_to_frame_types_only_what_json_leaves_ambiguous(
    schema: pa.DataFrameSchema,
) -> None:
    frame = service.rows_to_frame([ROW, {**ROW, "age": 40.5}], schema)
    assert frame["age"].dtype == "float64"  # JSON 39 is a number
    assert frame["education_num"].dtype == "float64"
    assert frame["workclass"].dtype == "str"  # all nulls take the contract's type
    assert frame["workclass"].isna().all()
    assert frame["education"].dtype == "str"
    mixed = service.rows_to_frame([{**ROW, "age": "39"}], schema)
    assert mixed["age"].dtype != "float64"  # a string stays a string: the contract decides


def test_a_request_column_named_self_is_read(schema: pa.DataFrameSchema) -> None:
    frame = service.rows_to_frame([{**ROW, "self": "yes"}], schema)
    assert frame["self"].tolist() == ["yes"]
    assert frame["age"].tolist() == [39.0]


def test_request_column_names_are_normalised_as_ingest_does(schema: pa.DataFrameSchema) -> None:
    raw = {("Education-Num " if k == "education_num" else k.upper()): v for k, v in ROW.items()}
    frame = service.rows_to_frame([raw], schema)
    assert list(frame.columns) == list(ROW)
    clash = {**ROW, "Age": 40, "x" * 1000: 1, "X" * 1000: 2}
    with pytest.raises(RequestError, match="duplicate column names after normalisation") as error:
        service.rows_to_frame([clash], schema)
    assert error.value.status == 422
    assert len(error.value.message) < 300


def check(contract: Contract, row: dict[str, Any], records: bool = True) -> str | None:
    frame = service.rows_to_frame([row], contract.schema)
    return service.admit(frame, contract, records=records)[1]


def test_a_conforming_request_passes_with_or_without_the_target(contract: Contract) -> None:
    frame = service.rows_to_frame([ROW], contract.schema)
    checked, problem = service.admit(frame, contract, records=True)
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
    frame = service.rows_to_frame([{**ROW, "zip": "x"}], contract.schema)
    drop = Contract(contract.schema, "income", "drop", 0.01)
    dropped, problem = service.admit(frame, drop, records=True)
    assert problem is None
    assert "zip" not in dropped.columns
    allow = Contract(contract.schema, "income", "allow", 0.01)
    allowed, problem = service.admit(frame, allow, records=True)
    assert problem is None
    assert "zip" in allowed.columns


def test_describe_failures_caps_the_list() -> None:
    failures = [
        Failure(f"c{i}", "in_range", "value", 1, 1.0, True, (i,), "in_range(0, 1)")
        for i in range(8)
    ]
    assert service.describe_failures(failures).endswith("; and 3 more")


def test_answer_predicts_at_the_configured_threshold(
    production: Production, contract: Contract
) -> None:
    rows = [ROW, {**ROW, "age": 60, "education_num": 16, "hours_per_week": 60}]
    inputs, predictions = service.answer(body(rows), production, contract)
    direct = production.model.predict_proba(inputs[list(production.features)])[:, 1]
    assert predictions["probability"].tolist() == direct.tolist()
    assert predictions["prediction"].tolist() == [int(p >= 0.3) for p in direct]
    document = service.response(production, predictions, ["r-0", "r-1"])
    assert document["model_version"] == "v1.0.0"
    assert document["predictions"][0] == {
        "request_id": "r-0",
        "probability": direct[0],
        "prediction": int(direct[0] >= 0.3),
    }
    json.dumps(document)  # plain JSON types only


def test_answer_refuses_a_contract_breach_with_422(
    production: Production, contract: Contract
) -> None:
    with pytest.raises(RequestError, match="does not match the data contract") as error:
        service.answer(body([{**ROW, "age": "x"}]), production, contract)
    assert error.value.status == 422


def test_model_features_must_be_in_the_contract(
    production: Production, schema: pa.DataFrameSchema
) -> None:
    assert service.model_features(production.model, schema, "m") == production.features
    narrow = schema.remove_columns(["age"])
    with pytest.raises(ValueError, match=r"columns the data contract lacks: \['age'\]"):
        service.model_features(production.model, narrow, "m")
    with pytest.raises(ValueError, match="does not record the columns"):
        service.model_features(object(), schema, "m")


def test_log_lines_are_one_json_object_per_row(production: Production, contract: Contract) -> None:
    rows = [ROW, {**ROW, "age": 50}]
    inputs, predictions = service.answer(body(rows), production, contract)
    at = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    ids = ["r-0", "r-1"]
    text = service.log_lines(
        inputs, predictions, production, "serve", at, request_ids=ids, latency_ms=2.34567
    )
    entries = [json.loads(line) for line in text.splitlines()]
    assert text.endswith("\n")
    assert len(entries) == 2
    assert [e["request_id"] for e in entries] == ids
    assert [e["latency_ms"] for e in entries] == [2.346, 2.346]
    assert entries[1]["logged_at"] == "2026-03-04T05:06:07.890+00:00"
    assert entries[1]["model_version"] == "v1.0.0"
    assert entries[1]["source"] == "serve"
    assert entries[1]["inputs"]["age"] == 50.0
    assert entries[0]["inputs"]["workclass"] is None
    assert entries[1]["probability"] == predictions["probability"].iloc[1]
    assert entries[1]["prediction"] == predictions["prediction"].iloc[1]


def test_log_names_and_retention() -> None:
    assert service.log_name(date(2026, 3, 4)) == "predictions-2026-03-04.jsonl"
    names = [
        "predictions-2026-03-04.jsonl",
        "predictions-2026-02-03.jsonl",  # 30 days before: kept with keep_days=30
        "predictions-2026-02-02.jsonl",  # 31 days before: expired
        "predictions-2025-12-31.jsonl",
        "notes.txt",
        "predictions-2026-13-01.json",
    ]
    expired = service.expired_logs(names, date(2026, 3, 4), keep_days=30)
    assert expired == ["predictions-2026-02-02.jsonl", "predictions-2025-12-31.jsonl"]
    assert service.expired_logs(names, date(2026, 3, 4), keep_days=1) == names[1:4]


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
    return Production(model, "v1.0.0", "0" * 32, tuple(features), BINARY, threshold=0.3)


def with_policy(contract: Contract, policy: str) -> Contract:
    return Contract(contract.schema, "income", "fail", 0.01, policy)  # type: ignore[arg-type]


def test_a_null_feature_is_no_breach_under_impute_and_one_under_refuse(
    contract: Contract, imputing: Production
) -> None:
    frame = service.rows_to_frame(
        [{**ROW, "age": None}, {**ROW, "education": None}], contract.schema
    )
    features = imputing.features
    impute, refuse = with_policy(contract, "impute"), with_policy(contract, "refuse")
    assert service.admit(frame, impute, records=True, features=features)[1] is None
    refused = service.admit(frame, refuse, records=True, features=features)[1]
    assert "column 'age' failed not_nullable" in str(refused)
    assert "column 'education' failed not_nullable" in str(refused)
    # a batch (records=False) too: 1 row in 2 is far above max_value_skew
    batch = frame.assign(workclass="Private")  # a column null in every row stays a breach
    assert service.admit(batch, impute, records=False, features=features)[1] is None
    assert "not_nullable" in str(service.admit(batch, refuse, records=False, features=features)[1])


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
        frame = service.rows_to_frame([row], contract.schema)
        problem = service.admit(frame, impute, records=True, features=features)[1]
        assert message in str(problem)


def test_answer_imputes_a_missing_feature_and_names_it(
    contract: Contract, imputing: Production
) -> None:
    rows = [ROW, {**ROW, "age": None}, {**ROW, "age": None, "education": None}, {**ROW, "age": 50}]
    inputs, predictions = service.answer(body(rows), imputing, with_policy(contract, "impute"))
    features = inputs[list(imputing.features)]
    direct = imputing.model.predict_proba(features)[:, 1]
    assert predictions["probability"].tolist() == direct.tolist()
    alone = imputing.model.predict_proba(features.iloc[[0, 3]])[:, 1]
    assert predictions["probability"].iloc[[0, 3]].tolist() == alone.tolist()
    document = service.response(imputing, predictions, ["a", "b", "c", "d"])
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
        for line in service.log_lines(inputs, predictions, imputing, "serve", at).splitlines()
    ]
    assert [entry["imputed"] for entry in logged] == [[], ["age"], ["age", "education"], []]
    assert logged[1]["inputs"]["age"] is None


def test_answer_refuses_a_missing_feature_under_refuse(
    contract: Contract, imputing: Production
) -> None:
    with pytest.raises(RequestError, match="column 'age' failed not_nullable") as error:
        service.answer(body([{**ROW, "age": None}]), imputing, with_policy(contract, "refuse"))
    assert error.value.status == 422


def test_a_row_without_gaps_names_no_imputed_feature(
    contract: Contract, production: Production
) -> None:
    _, predictions = service.answer(body([ROW]), production, contract)
    assert service.response(production, predictions, ["r"])["imputed"] == {}
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
        service.parse_rows(deep)
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


# --- every task answers in its own columns -------------------------------------------------


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    labels = data.target.map(lambda code: f"class_{code}")  # a multiclass target is text
    return data.data, labels


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.data, data.target


def fitted(estimator: Any, features: pd.DataFrame, target: pd.Series) -> Pipeline:
    """A pipeline that fills gaps (so a row may lack a feature), scales, then predicts."""
    from sklearn.impute import SimpleImputer

    model = Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler()), ("model", estimator)])
    return model.fit(features, target)


def with_a_gap(features: pd.DataFrame) -> pd.DataFrame:
    """Five rows, the second lacking its first feature."""
    batch = features.head(5).copy()
    batch.iloc[1, 0] = None
    return batch


def logged(production: Production, batch: pd.DataFrame, predictions: pd.DataFrame) -> list[Any]:
    at = datetime(2026, 3, 4, tzinfo=UTC)
    text = service.log_lines(
        batch, predictions, production, "batch", at, request_ids=None, latency_ms=1.5
    )
    return [json.loads(line) for line in text.splitlines()]


def test_a_multiclass_answer_is_a_probability_per_class_and_the_class(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, labels = wine
    model = fitted(LogisticRegression(max_iter=1000), features, labels)
    task = get_task("multiclass")
    production = Production(model, "v2.0.0", "0" * 32, tuple(features.columns), task, 0.5)
    batch = with_a_gap(features)
    predictions = service.predict(production, batch)
    per_class = ["probability_class_0", "probability_class_1", "probability_class_2"]
    assert list(predictions.columns) == [*per_class, "prediction", "imputed"]
    proba = model.predict_proba(batch)
    assert predictions[per_class].to_numpy().tolist() == proba.tolist()
    assert predictions["prediction"].tolist() == model.classes_[proba.argmax(axis=1)].tolist()
    assert predictions["prediction"].tolist()[0] == labels.iloc[0]  # it knows the first wine
    document = service.response(production, predictions, list("abcde"))
    first, second = document["predictions"][:2]
    expected = {"request_id": "a", **dict(zip(per_class, proba[0], strict=True))}
    assert first == {**expected, "prediction": "class_0"}
    assert second["imputed"] == ["alcohol"]
    assert document["imputed"] == {"alcohol": 1}
    json.dumps(document, allow_nan=False)  # plain JSON types only
    entries = logged(production, batch, predictions)
    assert [e["prediction"] for e in entries] == predictions["prediction"].tolist()
    assert [e["probability_class_2"] for e in entries] == proba[:, 2].tolist()
    assert "probability" not in entries[0]
    assert entries[1]["imputed"] == ["alcohol"]


def test_a_regression_answer_is_the_predicted_value(
    diabetes: tuple[pd.DataFrame, pd.Series],
) -> None:
    from sklearn.linear_model import Ridge

    features, target = diabetes
    model = fitted(Ridge(), features, target)
    task = get_task("regression")
    production = Production(model, "v3.0.0", "0" * 32, tuple(features.columns), task, 0.5)
    batch = with_a_gap(features)
    predictions = service.predict(production, batch)
    assert list(predictions.columns) == ["prediction", "imputed"]
    assert predictions["prediction"].tolist() == model.predict(batch).tolist()
    document = service.response(production, predictions, list("abcde"))
    assert document["predictions"][0] == {"request_id": "a", "prediction": model.predict(batch)[0]}
    assert document["predictions"][1]["imputed"] == ["age"]
    assert isinstance(document["predictions"][0]["prediction"], float)
    json.dumps(document, allow_nan=False)
    entries = logged(production, batch, predictions)
    assert [e["prediction"] for e in entries] == predictions["prediction"].tolist()
    assert set(entries[0]) == {
        "logged_at",
        "source",
        "model_version",
        "latency_ms",
        "request_id",
        "prediction",
        "imputed",
        "inputs",
    }


def test_the_log_quotes_whatever_a_class_label_holds() -> None:
    """Class labels come from the user's data: in a column name or a value, still JSON."""
    label = 'grade "A"\\1'
    predictions = pd.DataFrame(
        {f"probability_{label}": [0.25], "prediction": [label], "imputed": [""]}
    )
    production = Production(object(), "v1.0.0", "0" * 32, (), get_task("multiclass"), 0.5)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    text = service.log_lines(pd.DataFrame({"x": [1.0]}), predictions, production, "batch", at)
    entry = json.loads(text)
    assert (entry[f"probability_{label}"], entry["prediction"]) == (0.25, label)


def test_a_non_finite_answer_is_logged_as_null_in_strict_json() -> None:
    """JSON has no NaN or infinity; a bare `nan` would make the line unreadable."""
    predictions = pd.DataFrame(
        {"prediction": [1.5, float("nan"), float("inf")], "imputed": ["", "", ""]}
    )
    production = Production(object(), "v1.0.0", "0" * 32, (), get_task("regression"), 0.5)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    inputs = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    text = service.log_lines(inputs, predictions, production, "batch", at)

    def refuse(word: str) -> None:
        raise AssertionError(f"not JSON: {word}")

    entries = [json.loads(line, parse_constant=refuse) for line in text.splitlines()]
    assert [e["prediction"] for e in entries] == [1.5, None, None]


def test_a_model_that_does_not_fit_the_task_is_refused_in_one_line(
    wine: tuple[pd.DataFrame, pd.Series],
    diabetes: tuple[pd.DataFrame, pd.Series],
    adult_sample: pd.DataFrame,
) -> None:
    from sklearn.linear_model import Ridge

    regressor = fitted(Ridge(), *diabetes)
    three = fitted(LogisticRegression(max_iter=1000), *wine)
    numeric = ["age", "hours_per_week", "education_num"]
    two = fitted(LogisticRegression(), adult_sample[numeric], adult_sample["income"])
    refusals = [
        (regressor, "binary", "it gives no class probabilities (a regressor?)"),
        (regressor, "multiclass", "it gives no class probabilities (a regressor?)"),
        (three, "binary", "its classes are ['class_0', 'class_1', 'class_2'], not the binary"),
        (two, "multiclass", "it knows 2 classes ([0, 1]); a multiclass model knows 3 or more"),
        (three, "regression", "it is a classifier (classes ['class_0', 'class_1', 'class_2'])"),
        (two, "regression", "it is a classifier (classes [0, 1])"),
    ]
    for model, task, problem in refusals:
        with pytest.raises(ValueError, match="does not fit") as error:
            service.check_task(model, get_task(task), "model v1.0.0", "promote another")
        message = str(error.value)
        assert message.startswith(
            f"model v1.0.0: the model does not fit params.yaml data.task {task!r}: {problem}"
        )
        assert message.endswith("; promote another")
        assert "\n" not in message
    for model, task in [(two, "binary"), (three, "multiclass"), (regressor, "regression")]:
        service.check_task(model, get_task(task), "model v1.0.0", "promote another")


def test_the_production_loader_refuses_a_model_of_another_task(
    diabetes: tuple[pd.DataFrame, pd.Series],
    schema: pa.DataFrameSchema,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A regressor promoted where params.yaml says binary: one line, before any request."""
    import skops.io as sio
    from sklearn.linear_model import Ridge

    from mlops.errors import UsageError
    from mlops.io import dvc
    from mlops.release.registry import Manifest
    from mlops.serving.production import load_manifest_model

    data = sio.dumps(fitted(Ridge(), *diabetes))
    md5 = files.bytes_md5(data)
    cached = tmp_path / md5
    cached.write_bytes(data)
    monkeypatch.setattr(dvc, "cache_file", lambda _: cached)
    manifest = Manifest(
        version="v1.0.0",
        git_revision="0" * 40,
        model_md5=md5,
        metrics={},
        promoted_at="2026-01-02T03:04:05+00:00",
    )
    params = files.load_params(ROOT / "params.yaml")
    assert params.data.task == "binary"
    with pytest.raises(UsageError) as error:
        load_manifest_model(manifest, params, schema)
    assert str(error.value) == (
        f"model v1.0.0 ({cached}): the model does not fit params.yaml data.task 'binary': "
        "it gives no class probabilities (a regressor?); promote a model trained for this "
        "task (or `mlops rollback --to` one)"
    )


# --- request ids, refusals, and the log read back as monitoring reads it -------------------


def test_request_ids_are_new_unless_the_client_names_one() -> None:
    fresh = {service.client_request_id(None) for _ in range(1000)}
    assert len(fresh) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in fresh)
    assert service.client_request_id("order-17:a/b") == "order-17:a/b"
    for bad in ("", "a b", "x" * 129, 'quote"', "new\nline", "trailing\n", "é"):
        with pytest.raises(RequestError, match="X-Request-ID") as error:
            service.client_request_id(bad)
        assert error.value.status == 400
    assert service.row_ids("r", 1, suffix_single=False) == ["r"]
    assert service.row_ids("r", 1, suffix_single=True) == ["r-0"]
    assert service.row_ids("r", 3, suffix_single=False) == ["r-0", "r-1", "r-2"]


def test_log_lines_name_each_row_by_default(production: Production, contract: Contract) -> None:
    inputs, predictions = service.answer(body([ROW, ROW]), production, contract)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    entries = [
        json.loads(line)
        for line in service.log_lines(inputs, predictions, production, "x", at).splitlines()
    ]
    base = entries[0]["request_id"].removesuffix("-0")
    assert [e["request_id"] for e in entries] == [f"{base}-0", f"{base}-1"]
    assert "latency_ms" not in entries[0]  # not measured: not invented


def test_a_refusal_is_one_record_without_inputs() -> None:
    at = datetime(2026, 3, 4, tzinfo=UTC)
    line = service.refusal_line("v1.0.0", "serve", at, "r1", 'bad "JSON"')
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "logged_at": "2026-03-04T00:00:00.000+00:00",
        "source": "serve",
        "model_version": "v1.0.0",
        "request_id": "r1",
        "refused": True,
        "reason": 'bad "JSON"',
    }


def test_what_serve_logs_is_what_monitoring_reads(
    production: Production, contract: Contract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own answer and refusal paths write the log; read_window reads it back:
    every answered row with its request id and latency, every refusal counted by reason."""
    monkeypatch.chdir(tmp_path)
    files.write_bytes(tmp_path / "data/schema.yaml", (ROOT / "data/schema.yaml").read_bytes())
    params = files.load_params(ROOT / "params.yaml")
    app = create_app(params)
    with TestClient(app) as client:
        holder = app.state.service.holder  # no production.json here: the model is handed in
        holder.current, holder.problem = production, None

        def post(content: bytes, request_id: str) -> tuple[int, Any]:
            reply = client.post("/predict", content=content, headers={"X-Request-ID": request_id})
            return reply.status_code, reply.json()

        status, answered = post(body([ROW, {**ROW, "age": 50}]), "client-1")
        assert status == 200, answered
        assert [p["request_id"] for p in answered["predictions"]] == ["client-1-0", "client-1-1"]
        status, single = post(body([ROW]), "client-2")
        assert single["predictions"][0]["request_id"] == "client-2"
        status, refused = post(body([{**ROW, "age": "old"}]), "client-3")
        assert status == 422
        assert refused["request_id"] == "client-3"
        assert post(b"{not json", "client-4")[0] == 400
        app.state.service.refuse("POST", "client-5", 413, "request body of 9 bytes exceeds 1 bytes")
    logs = sorted(Path(params.serve.log_dir).glob("predictions-*.jsonl"))
    window = read_window(
        [(log.name, log.read_bytes()) for log in logs],
        production.features,
        ["probability", "prediction"],
        Window(),
    )
    assert window.counts.rows == 3
    assert window.counts.corrupt == 0
    assert window.counts.refused == 3
    assert set(window.counts.refused_reasons) == {
        refused["error"],
        "request body is not valid JSON",
        "request body of 9 bytes exceeds 1 bytes",
    }
    assert window.meta["request_id"].tolist() == ["client-1-0", "client-1-1", "client-2"]
    latency = window.meta["latency_ms"]
    assert (latency > 0).all()
    assert latency[0] == latency[1]  # one request, one handling time
    assert window.inputs["age"].tolist() == [39.0, 50.0, 39.0]
    assert window.outputs["probability"].tolist() == [
        p["probability"] for p in [*answered["predictions"], *single["predictions"]]
    ]


def test_a_contract_check_the_schema_cannot_express_is_run_by_pandera_per_request(
    production: Production, contract: Contract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check pydantic has no constraint for (here ``ne``) is left to pandera: a request
    breaking it gets a 422 naming the column; one keeping it is answered."""
    monkeypatch.chdir(tmp_path)
    document = files.read_yaml(ROOT / "data/schema.yaml")
    document["columns"]["fnlwgt"]["ne"] = 12345.0
    files.write_bytes(tmp_path / "data/schema.yaml", yaml.safe_dump(document).encode())
    app = create_app(files.load_params(ROOT / "params.yaml"))
    assert app.state.service.schemas.uncovered == ("fnlwgt: not_equal_to",)
    with TestClient(app) as client:
        holder = app.state.service.holder
        holder.current, holder.problem = production, None
        bad = client.post("/predict", content=body([ROW, {**ROW, "fnlwgt": 12345.0}]))
        good = client.post("/predict", content=body([ROW, {**ROW, "age": 50}]))
    assert bad.status_code == 422
    assert "fnlwgt" in bad.json()["error"]
    assert "not_equal_to" in bad.json()["error"]
    assert good.status_code == 200, good.json()
    expected = service.answer(body([ROW, {**ROW, "age": 50}]), production, contract)[1]
    assert [p["probability"] for p in good.json()["predictions"]] == pytest.approx(
        expected["probability"].tolist()
    )


def test_log_lines_take_one_latency_per_row(production: Production, contract: Contract) -> None:
    inputs, predictions = service.answer(body([ROW, ROW, ROW]), production, contract)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    text = service.log_lines(
        inputs,
        predictions,
        production,
        "serve",
        at,
        request_ids=["a", "b-0", "b-1"],
        latency_ms=[1.23456, 2.0, 2.0],
    )
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["latency_ms"] for e in entries] == [1.235, 2.0, 2.0]
    assert list(entries[0])[:5] == [
        "logged_at",
        "source",
        "model_version",
        "latency_ms",
        "request_id",
    ]
    one = service.log_lines(inputs, predictions, production, "serve", at, latency_ms=4.0)
    assert [json.loads(line)["latency_ms"] for line in one.splitlines()] == [4.0] * 3


def test_a_request_is_counted_once_before_its_last_byte_is_sent() -> None:
    """A client holding its whole answer finds it in /metrics: the count is taken as the
    last body chunk goes out, not after (CI once scraped 363 of 364 answers)."""
    import asyncio
    from types import SimpleNamespace

    from mlops.serving.app import Door

    counted: list[tuple[str, int]] = []
    metrics = SimpleNamespace(request=lambda path, status, seconds: counted.append((path, status)))
    sent: list[tuple[str, list[tuple[str, int]]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    async def send(message: Any) -> None:
        sent.append((message["type"], list(counted)))

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    door = Door(app, SimpleNamespace(metrics=metrics))  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "path": "/ready", "headers": []}
    asyncio.run(door(scope, receive, send))
    assert sent == [
        ("http.response.start", []),
        ("http.response.body", []),
        ("http.response.body", [("/ready", 200)]),
    ]
    assert counted == [("/ready", 200)]


def test_request_schemas_take_columns_named_as_pydantic_s_own_members() -> None:
    """A column may be called ``model_dump`` (pydantic's), ``self`` or ``model_year``:
    the generated request model takes them under their own names, in /docs, in a
    request and in a validation error."""
    from pydantic import ValidationError

    from mlops.serving.app import build_schemas

    schema = pa.DataFrameSchema({
        "model_dump": pa.Column(float, pa.Check.in_range(0, 10)),
        "self": pa.Column(str, pa.Check.isin(["yes", "no"])),
        "model_year": pa.Column(int),
        "label": pa.Column(int, nullable=True),
    })  # fmt: skip
    schemas = build_schemas(Contract(schema, "label", "fail", 0.01), BINARY, [0, 1])
    row = {"model_dump": 2.5, "self": "yes", "model_year": 1999}
    request = schemas.request.model_validate({"rows": [row]})
    assert request.rows[0].model_dump(by_alias=True, exclude_unset=True) == row  # type: ignore[attr-defined]
    documented = schemas.request.model_json_schema()["$defs"]["Row"]
    assert list(documented["properties"]) == ["model_dump", "self", "model_year", "label"]
    assert documented["required"] == ["model_dump", "self", "model_year"]
    with pytest.raises(ValidationError) as error:
        schemas.request.model_validate({"rows": [{**row, "model_dump": 11.0}]})
    assert error.value.errors()[0]["loc"] == ("rows", 0, "model_dump")
