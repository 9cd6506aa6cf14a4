"""The contract: loading schema.yaml strictly, inferring a draft, lazy checks, skew kinds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import yaml

from mlops.data.contract import (
    check_contract,
    contract_document,
    duplicate_columns,
    infer_contract,
    load_contract,
    resolve_columns,
    select_features,
)
from mlops.data.ingestion import ingest
from mlops.errors import UsageError
from mlops.io.files import load_params
from mlops.tasks.task import get_task
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, data_config, diabetes, wine

BINARY = get_task("binary")
CONTRACT = pa.DataFrameSchema(
    {
        "age": pa.Column("float64", pa.Check.in_range(17, 90), nullable=False),
        "colour": pa.Column("str", pa.Check.isin(["red", "blue"]), nullable=True),
        "score": pa.Column("float64", nullable=True),
        "y": pa.Column("int64", pa.Check.isin([0, 1])),
    },
    strict=True,
)


def frame(rows: int = 200, **columns: Any) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "age": np.linspace(20, 80, rows),
            "colour": pd.Series(["red", "blue"] * (rows // 2), dtype="str"),
            "score": np.arange(rows, dtype="float64"),
            "y": np.array([0, 1] * (rows // 2), dtype="int64"),
        }
    )
    return base.assign(**columns)


def check(data: pd.DataFrame, policy: str = "fail", max_value_skew: float = 0.01) -> Any:
    return check_contract(data, CONTRACT, "y", policy, max_value_skew)  # type: ignore[arg-type]


def only(result: Any, column: str) -> dict[str, Any]:
    found = [f for f in result.failures if f.column == column]
    assert len(found) == 1, result.failures
    return found[0].to_dict()


# --- load_contract --------------------------------------------------------------


def test_the_committed_contract_loads(root: Any) -> None:
    schema = load_contract(yaml.safe_load((root / "data/schema.yaml").read_text()), "schema")
    assert schema.strict is True
    assert "income" in schema.columns


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (["age"], "expected a pandera schema with a 'columns' mapping"),
        ({"strict": True}, "expected a pandera schema with a 'columns' mapping"),
        ({"columns": {"age": {"dtype": "float64"}}, "strcit": True}, "unknown key 'strcit'"),
        ({"columns": {"age": {"dtype": "float64", "nulable": True}}}, "unknown key or check"),
        ({"columns": {"age": {"dtype": "float64", "in_rnge": {}}}}, "'in_rnge'"),
        ({"columns": {"age": {"dtype": "float64", "nullable": "maybe"}}}, "true or false"),
        ({"columns": {"age": {"nullable": True}}}, "expected a mapping with a 'dtype'"),
        ({"columns": {"age": "float64"}}, "expected a mapping with a 'dtype'"),
        ({"columns": {"age": {"dtype": "flaot64"}}}, "not a valid pandera schema"),
        ({"columns": {"age": {"dtype": "float64", "in_range": {"low": 1}}}}, "in_range()"),
        ({"columns": {"Age": {"dtype": "float64"}}}, "use 'age'"),
    ],
)
def test_a_malformed_contract_is_one_clear_error(document: Any, message: str) -> None:
    with pytest.raises(UsageError, match=r"^data/schema\.yaml: ") as error:
        load_contract(document, "data/schema.yaml")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# --- infer_contract -------------------------------------------------------------


def test_infer_drafts_ranges_categories_and_nullability(adult_sample: pd.DataFrame) -> None:
    schema = infer_contract(adult_sample, "income", 100, BINARY)
    age = schema.columns["age"]
    assert str(age.dtype) == "float64"
    assert age.checks[0].statistics == {
        "min_value": adult_sample["age"].min(),
        "max_value": adult_sample["age"].max(),
        "include_min": True,
        "include_max": True,
    }
    assert set(schema.columns["sex"].checks[0].statistics["allowed_values"]) == {"Female", "Male"}
    assert schema.columns["workclass"].nullable is True
    assert schema.columns["education"].nullable is False
    assert schema.columns["income"].checks[0].statistics["allowed_values"] == [0, 1]
    assert schema.strict is True


def test_infer_leaves_open_text_without_categories(adult_sample: pd.DataFrame) -> None:
    schema = infer_contract(adult_sample, "income", 10, BINARY)
    assert schema.columns["native_country"].checks == []  # 40 countries > 10
    assert schema.columns["sex"].checks  # 2 <= 10


def test_infer_marks_key_like_columns_unique() -> None:
    data = frame(rows=200, key=pd.Series([f"id{i}" for i in range(200)], dtype="str"))
    schema = infer_contract(data, "y", 10, BINARY)
    assert schema.columns["key"].unique is True
    assert schema.columns["score"].unique is True  # whole numbers, all distinct
    assert schema.columns["age"].unique is False  # fractions: a measurement, not a key
    small = infer_contract(data.head(20), "y", 10, BINARY)
    assert small.columns["key"].unique is False  # 20 distinct values prove nothing


def test_inferred_document_round_trips_and_accepts_its_data(adult_sample: pd.DataFrame) -> None:
    document = contract_document(infer_contract(adult_sample, "income", 100, BINARY))
    text = yaml.safe_dump(document, sort_keys=False)
    assert "dtype: str\n" in text
    assert "string[pyarrow]" not in text
    assert document["columns"]["age"]["nullable"] is False
    loaded = load_contract(yaml.safe_load(text), "draft.yaml")
    result = check_contract(adult_sample, loaded, "income", "fail", 0.0)
    assert result.failures == ()


def test_infer_a_multiclass_target_allows_the_classes_seen(root: Any) -> None:
    data = ingest(wine(), data_config(load_params(root / "params.yaml"), "multiclass"))
    document = contract_document(infer_contract(data, WINE_TARGET, 100, get_task("multiclass")))
    target = document["columns"][WINE_TARGET]
    assert (target["dtype"], target["nullable"]) == ("str", False)
    assert target["isin"] == ["class_0", "class_1", "class_2"]
    assert document["columns"]["proline"]["in_range"]["min_value"] == 278
    contract = load_contract(yaml.safe_load(yaml.safe_dump(document)), "draft.yaml")
    assert check_contract(data, contract, WINE_TARGET, "fail", 0.0).failures == ()
    unseen = data.assign(**{WINE_TARGET: data[WINE_TARGET].where(data.index > 0, "class_3")})
    failure = check_contract(unseen, contract, WINE_TARGET, "fail", 0.5).failures[0]
    assert (failure.column, failure.check, failure.skew, failure.fatal) == (
        WINE_TARGET, "isin", "schema", True,
    )  # fmt: skip


def test_infer_a_regression_target_is_any_number(root: Any) -> None:
    data = ingest(diabetes(), data_config(load_params(root / "params.yaml"), "regression"))
    document = contract_document(infer_contract(data, DIABETES_TARGET, 100, get_task("regression")))
    assert document["columns"][DIABETES_TARGET] == {"dtype": "float64", "nullable": False}
    assert "in_range" in document["columns"]["bmi"]  # features keep their observed range
    contract = load_contract(yaml.safe_load(yaml.safe_dump(document)), "draft.yaml")
    beyond = data.assign(**{DIABETES_TARGET: data[DIABETES_TARGET] * 10})  # a new range
    assert check_contract(beyond, contract, DIABETES_TARGET, "fail", 0.0).failures == ()


# --- check_contract: schema skew -------------------------------------------------


def test_a_clean_frame_passes() -> None:
    result = check(frame())
    assert result.passed
    assert result.failures == ()


def test_wrong_dtype_is_fatal_schema_skew_naming_what_it_got() -> None:
    result = check(frame(age=pd.Series(["x"] * 200, dtype="str")))
    failure = only(result, "age")
    assert (failure["check"], failure["skew"], failure["fatal"]) == ("dtype", "schema", True)
    assert failure["examples"] == ["str"]
    assert failure["detail"] == "dtype('float64')"
    assert not result.passed


def test_missing_column_is_fatal() -> None:
    result = check(frame().drop(columns=["score"]))
    failure = only(result, "score")
    assert failure["check"] == "column_in_dataframe"
    assert failure["fatal"] is True


@pytest.mark.parametrize(("policy", "passed"), [("fail", False), ("drop", True), ("allow", True)])
def test_extra_column_follows_the_policy(policy: str, passed: bool) -> None:
    result = check(frame(extra=1.0), policy=policy)
    assert result.passed is passed
    if not passed:
        assert only(result, "extra")["check"] == "column_in_schema"


def test_all_null_column_is_fatal_even_when_nullable() -> None:
    result = check(frame(score=np.nan))
    failure = only(result, "score")
    assert (failure["check"], failure["fatal"]) == ("all_null", True)


def test_infinite_values_are_fatal() -> None:
    data = frame()
    data.loc[3, "score"] = np.inf
    data.loc[5, "score"] = -np.inf
    failure = only(check(data), "score")
    assert failure["check"] == "finite"
    assert failure["failing_rows"] == 2
    assert failure["fatal"] is True
    assert sorted(failure["examples"]) == ["-inf", "inf"]  # JSON has no infinity


def test_target_outside_its_labels_is_schema_skew_at_any_rate() -> None:
    data = frame()
    data.loc[0, "y"] = 2
    failure = only(check(data, max_value_skew=0.5), "y")
    assert (failure["skew"], failure["fatal"], failure["examples"]) == ("schema", True, [2])


def test_one_class_target_is_fatal() -> None:
    failure = only(check(frame(y=np.zeros(200, dtype="int64"))), "y")
    assert (failure["check"], failure["fatal"], failure["examples"]) == (
        "target_not_constant",
        True,
        [0],
    )


def test_a_constant_regression_target_is_fatal_and_a_varying_one_passes() -> None:
    contract = pa.DataFrameSchema({"x": pa.Column("float64"), "y": pa.Column("float64")})
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.5, 2.5, 2.5]})
    result = check_contract(data, contract, "y", "fail", 0.0)
    assert [(f.check, f.detail, f.fatal) for f in result.failures] == [
        ("target_not_constant", "target_not_constant", True)
    ]
    assert check_contract(data.assign(y=[2.5, 3.0, 2.5]), contract, "y", "fail", 0.0).passed


def test_duplicates_in_a_unique_column_are_fatal() -> None:
    schema = pa.DataFrameSchema({"key": pa.Column("str", unique=True)})
    data = pd.DataFrame({"key": pd.Series(["a", "b", "a"], dtype="str")})
    result = check_contract(data, schema, None, "fail", 0.5)
    assert [(f.check, f.fatal) for f in result.failures] == [("field_uniqueness", True)]


# --- check_contract: value skew --------------------------------------------------


def test_unseen_category_at_a_low_rate_is_reported_not_fatal() -> None:
    data = frame()
    data.loc[7, "colour"] = "green"
    result = check(data)
    failure = only(result, "colour")
    assert (failure["check"], failure["skew"], failure["fatal"]) == ("isin", "value", False)
    assert (failure["failing_rows"], failure["rate"], failure["examples"]) == (1, 0.005, ["green"])
    assert result.passed
    assert result.unseen["colour"].tolist() == [7]
    assert result.out_of_contract["colour"].tolist() == [7]


def test_value_skew_above_the_limit_is_fatal() -> None:
    data = frame()
    data.loc[:9, "colour"] = "green"  # 10 of 200 rows = 5% > 1%
    failure = only(check(data), "colour")
    assert (failure["skew"], failure["fatal"], failure["rate"]) == ("value", True, 0.05)


def test_out_of_range_and_forbidden_nulls_are_value_skew() -> None:
    data = frame()
    data.loc[2, "age"] = 120.0
    data.loc[4, "age"] = np.nan
    result = check(data, max_value_skew=0.02)
    checks = {f.check: f for f in result.failures}
    assert set(checks) == {"in_range", "not_nullable"}
    assert all(f.skew == "value" and not f.fatal for f in checks.values())
    # nulls count as missing, not as out of contract
    assert result.out_of_contract["age"].tolist() == [2]


def test_schema_failures_come_first() -> None:
    data = frame(extra=1.0)
    data.loc[0, "colour"] = "green"
    result = check(data)
    assert [f.check for f in result.failures] == ["column_in_schema", "isin"]


def test_checking_does_not_change_the_frame() -> None:
    data = frame(extra=1.0)
    before = data.copy()
    check(data, policy="drop")
    pd.testing.assert_frame_equal(data, before)


# --- names and policy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["age", "sex"], []),
        (["age", "age"], ["age"]),
        (["age", "age.1", "sex"], ["age"]),  # how pandas renames a repeated CSV header
        (["Education-Num", "education_num"], ["education_num"]),
        (["version.1", "sex"], []),  # a dotted name alone is not a duplicate
    ],
)
def test_duplicate_columns(names: list[str], expected: list[str]) -> None:
    assert duplicate_columns(names) == expected


def test_resolve_columns_normalises_and_refuses_unknown_names() -> None:
    assert resolve_columns(["native-country", "Sex"], {"native_country", "sex"}, "k") == [
        "native_country",
        "sex",
    ]
    with pytest.raises(UsageError, match=r"params.yaml validate.protected: 'racee' is not a col"):
        resolve_columns(["racee"], {"race"}, "validate.protected")


def test_select_features_keeps_data_order_without_target_and_excluded() -> None:
    assert select_features(["a", "y", "b", "c"], "y", {"b"}) == ["a", "c"]
