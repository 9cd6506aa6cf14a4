"""The reference profile: what it holds per column and task, that it is plain JSON and
reproducible, and that a damaged file is refused in one line."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import UsageError
from mlops.monitoring.reference import (
    LATENCY_MIN_ROWS,
    LATENCY_ROWS,
    build_reference,
    load_reference,
    single_row_latencies,
    single_row_latency,
)
from tests.unit.monitoring_cases import BUILT_AT, REFERENCE_ROWS, TASK_NAMES, case


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_profile_is_strict_json_and_loads_back(task: str) -> None:
    reference = case(task).reference
    text = json.dumps(reference, allow_nan=False)  # no NaN: any JSON reader takes it
    assert load_reference(json.loads(text), "models/reference.json") == reference
    assert reference["task"] == task
    assert reference["built_at"] == "2026-01-01T00:00:00+00:00"


def test_undefined_metrics_and_an_unstated_build_time_are_null() -> None:
    c = case("binary")
    found = build_reference(
        c.features, c.prediction, c.task, {"roc_auc": float("nan"), "accuracy": 0.9}, 0
    )
    assert found["metrics"] == {"roc_auc": None, "accuracy": 0.9}
    assert found["built_at"] is None  # a run fact: byte-reproducible outputs leave it out
    json.dumps(found, allow_nan=False)


def test_what_each_task_profiles_of_its_answers() -> None:
    binary = case("binary").reference["prediction"]
    assert binary["drift_column"] == "probability"
    assert binary["columns"]["probability"]["kind"] == "numeric"
    assert set(binary["columns"]["prediction"]["frequencies"]) == {"0.0", "1.0"}
    multiclass = case("multiclass").reference["prediction"]
    assert multiclass["drift_column"] == "prediction"
    rates = multiclass["columns"]["prediction"]["frequencies"]
    assert set(rates) == {"class_0", "class_1", "class_2"}
    assert sum(rates.values()) == pytest.approx(1.0)
    assert multiclass["columns"]["probability_class_1"]["quantiles"]["0.5"] > 0
    regression = case("regression").reference["prediction"]
    assert regression["drift_column"] == "prediction"
    assert len(regression["columns"]["prediction"]["sample"]) == REFERENCE_ROWS


def test_numeric_and_categorical_feature_profiles() -> None:
    c = case("binary")
    radius = c.reference["features"]["mean_radius"]
    assert radius["null_rate"] == 0.0
    assert radius["min"] <= radius["quantiles"]["0.5"] <= radius["max"]
    # deciles: ten bins of about a tenth of the rows each
    np.testing.assert_allclose(radius["histogram"]["shares"], 0.1, atol=0.02)
    assert len(radius["sample"]) == REFERENCE_ROWS
    grade = c.reference["features"]["grade"]
    assert grade["kind"] == "categorical"
    assert set(grade["frequencies"]) == set("abcd")
    assert grade["other"] == 0.0


def test_sample_is_capped_seeded_and_nulls_counted() -> None:
    c = case("regression")
    features = c.features.assign(bmi=c.features["bmi"].where(c.features.index % 4 > 0))
    build = lambda seed: build_reference(  # noqa: E731
        features, c.prediction, c.task, {}, seed, sample_size=100, built_at=BUILT_AT
    )
    first, again, other = build(1), build(1), build(2)
    assert first == again
    assert first["features"]["age"]["sample"] != other["features"]["age"]["sample"]
    assert len(first["features"]["age"]["sample"]) == 100
    assert first["features"]["bmi"]["null_rate"] == pytest.approx(0.25, abs=0.01)
    nulls = build_reference(
        features.assign(bmi=np.nan, s1=np.inf), c.prediction, c.task, {}, 1, built_at=BUILT_AT
    )
    assert nulls["features"]["s1"]["sample"] == []  # nothing finite to profile
    assert nulls["features"]["bmi"] == {
        "kind": "numeric",
        "rows": len(features),
        "null_rate": 1.0,
        "sample": [],
    }
    load_reference(nulls, "reference")


def _damaged(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(case("binary").reference)
    change(document)
    return document


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "expected a JSON object, got list"),
        ({"format": 2}, "format 2, expected 1"),
        (_damaged(lambda d: d.pop("features")), "'features' missing"),
        (_damaged(lambda d: d["prediction"].update(drift_column="x")), "drift_column"),
        (
            _damaged(lambda d: d["features"]["mean_radius"]["histogram"]["shares"].pop()),
            "features.mean_radius: histogram shares do not fit its edges",
        ),
        (
            _damaged(lambda d: d["features"]["grade"].pop("frequencies")),
            "features.grade: no category",
        ),
        (
            _damaged(lambda d: d["features"]["mean_area"].pop("std")),
            "features.mean_area: missing std",
        ),
    ],
)
def test_a_damaged_profile_is_one_line(document: Any, problem: str) -> None:
    with pytest.raises(UsageError) as error:
        load_reference(document, "models/reference.json")
    message = str(error.value)
    assert message.startswith("models/reference.json: not a monitoring reference profile (")
    assert problem in message
    assert "\n" not in message


def test_the_profile_names_its_model_and_holds_no_fact_of_the_run() -> None:
    c = case("binary")
    found = build_reference(
        c.features, c.prediction, c.task, {"accuracy": 0.9}, 0, model_md5="a" * 32
    )
    assert found["model_md5"] == "a" * 32
    again = build_reference(
        c.features, c.prediction, c.task, {"accuracy": 0.9}, 0, model_md5="a" * 32
    )
    assert json.dumps(found) == json.dumps(again)  # byte-identical for the same inputs
    assert "latency_ms" not in found  # the machine's, not the inputs': kept out
    assert load_reference(found, "models/reference.json") == found


def test_single_row_latency_times_one_row_at_a_time() -> None:
    rows = pd.DataFrame({"x": np.arange(300.0)})
    seen: list[int] = []
    found = single_row_latency(lambda row: seen.append(len(row)), rows)
    assert set(seen) == {1}
    assert found["rows"] == LATENCY_ROWS  # one untimed call first, then 200 timed
    assert len(seen) == LATENCY_ROWS + 1
    assert 0 <= found["p50"] <= found["p95"]
    slow = single_row_latency(lambda row: time.sleep(0.002), rows, budget_s=0.0)
    assert slow["rows"] == LATENCY_MIN_ROWS  # a slow model stops at the budget
    assert slow["p50"] >= 2.0
    with pytest.raises(UsageError, match="no rows to time"):
        single_row_latency(lambda row: None, rows.iloc[:0])


def test_predicts_compared_are_timed_in_turn_so_a_burst_of_load_weighs_on_both() -> None:
    """Two equally fast predicts; the machine turns three times as slow a third of the
    way through the calls. Timed one after the other, the second would look three
    times as slow as the first; timed in turn, row by row, they come out alike."""
    rows = pd.DataFrame({"x": np.arange(40.0)})
    calls: list[str] = []

    def predict(name: str) -> Any:
        def call(row: pd.DataFrame) -> None:
            calls.append(name)
            time.sleep(0.002 if len(calls) < 30 else 0.006)  # the burst: call 30 onwards

        return call

    first, second = single_row_latencies([(predict("a"), rows), (predict("b"), rows)])
    assert first["rows"] == second["rows"] == 40
    assert 0.75 < second["p50"] / first["p50"] < 1.33
    assert calls[:2] == ["a", "b"]  # one untimed call each, then turns rotating per row
    assert calls[2:6] == ["a", "b", "b", "a"]
    with pytest.raises(ValueError, match="frames of"):
        single_row_latencies([(predict("a"), rows), (predict("b"), rows.iloc[:5])])
