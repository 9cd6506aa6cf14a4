"""Slices: per-group metrics, too-small groups, the worst slice and the widest gap, per task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.config import SlicesConfig, parse_params
from mlops.errors import UsageError
from mlops.evaluation.report import REPORTS
from mlops.evaluation.slices import MISSING, label_slices, measure_slices, summarise_slices
from mlops.tasks.metrics import METRICS, Prediction
from tests.conftest import ROOT

FRAME = pd.DataFrame(
    {
        "sex": ["F", "F", "F", "F", "M", "M", "M", "M", None],
        "age": [20.0, 30.0, 40.0, 50.0, 22.0, 33.0, 44.0, np.nan, 70.0],
    }
)
Y = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.4, 0.7, 0.3, 0.5])


def binary(proba: np.ndarray) -> Prediction:
    return Prediction((proba >= 0.5).astype(int), np.column_stack([1 - proba, proba]), (0, 1))


def measure_binary(
    labels: dict[str, pd.Series], y: np.ndarray, p: np.ndarray, min_rows: int
) -> list[dict[str, object]]:
    """roc_auc per slice, with the binary task's rates."""
    return measure_slices(
        labels,
        y,
        binary(p),
        metric=METRICS["roc_auc"],
        min_rows=min_rows,
        describe=REPORTS["binary"].describe,
    )


def config(**update: object) -> SlicesConfig:
    base = SlicesConfig(columns=("sex",), bands={"age": (25.0, 45.0)}, min_rows=2)
    return base.model_copy(update=update)


def test_labels_for_categories_bands_and_missing_values() -> None:
    labels = label_slices(FRAME, config())
    assert labels["sex"].tolist() == ["F"] * 4 + ["M"] * 4 + [MISSING]
    assert labels["age"].tolist() == [
        "< 25", "[25, 45)", "[25, 45)", ">= 45", "< 25", "[25, 45)", "[25, 45)", MISSING, ">= 45"
    ]  # fmt: skip


def test_a_slice_attribute_that_is_not_a_column_is_one_clear_line() -> None:
    with pytest.raises(UsageError) as error:
        label_slices(FRAME, config(columns=("gender",)))
    message = str(error.value)
    assert message.startswith("params.yaml evaluate.slices.columns: no column 'gender'")
    assert "\n" not in message
    with pytest.raises(UsageError, match=r"evaluate.slices.bands: no column 'years'"):
        label_slices(FRAME, config(bands={"years": (30.0,)}))


def test_bands_need_a_numeric_column() -> None:
    with pytest.raises(UsageError, match=r"bands.sex: column 'sex' is not numeric"):
        label_slices(FRAME, config(columns=(), bands={"sex": (1.0,)}))


def test_metrics_per_slice_and_too_small_slices_are_reported() -> None:
    records = measure_binary(label_slices(FRAME, config(min_rows=3)), Y, P, min_rows=3)
    by_name = {(r["attribute"], r["slice"]): r for r in records}
    female = by_name[("sex", "F")]
    assert female["value"] == 1.0
    assert female["rows"] == 4
    assert female["positive_rate"] == 0.5
    assert female["selection_rate"] == 0.5
    # Men: positives 0.4, 0.7 against negatives 0.6, 0.3 -> 3 of 4 pairs ranked right.
    assert by_name[("sex", "M")]["value"] == pytest.approx(0.75)
    missing = by_name[("sex", MISSING)]
    assert missing["value"] is None
    assert missing["status"] == "too small: 1 rows < min_rows 3"


def test_an_empty_band_is_reported_without_dividing_by_zero() -> None:
    records = measure_binary(
        label_slices(FRAME, config(columns=(), bands={"age": (25.0, 45.0, 60.0)})), Y, P, 1
    )
    empty = next(r for r in records if r["slice"] == "[45, 60)")
    single = next(r for r in records if r["slice"] == ">= 60")
    assert empty["rows"] == 1  # the 50-year-old; the band above 60 holds the 70-year-old
    assert (single["rows"], single["value"]) == (1, None)
    assert single["status"] == "not measurable: the rows hold a single class"
    no_rows = measure_binary(
        {"age": pd.Series(pd.Categorical(["a"], categories=["a", "b"]))},
        np.array([1]),
        np.array([0.5]),
        1,
    )[1]
    assert no_rows["rows"] == 0
    assert no_rows["positive_rate"] is None
    assert no_rows["status"].startswith("too small: 0 rows")


WINE_CLASSES = ("a", "b", "c")


def test_multiclass_slices_missing_a_class_are_not_measurable_for_one_vs_rest_auc() -> None:
    labels = {"sex": label_slices(FRAME, config())["sex"]}
    y = np.array(["a", "b", "c", "a", "a", "b", "a", "b", "c"])
    proba = np.eye(3)[[0, 1, 2, 0, 1, 1, 0, 0, 2]] * 0.8 + 0.2 / 3
    prediction = Prediction(np.array(WINE_CLASSES)[proba.argmax(axis=1)], proba, WINE_CLASSES)
    records = measure_slices(
        labels,
        y,
        prediction,
        metric=METRICS["roc_auc_ovr"],
        min_rows=1,
        describe=REPORTS["multiclass"].describe,
    )
    by_slice = {r["slice"]: r for r in records}
    assert by_slice["F"]["value"] is not None  # a, b, c, a: every class
    assert set(by_slice["F"]) == {"attribute", "slice", "rows", "value", "status"}
    assert by_slice["M"]["value"] is None  # a, b, a, b: no c
    assert by_slice["M"]["status"] == "not measurable: the rows lack one of the model's classes"
    accuracy = measure_slices(
        labels, y, prediction, metric=METRICS["accuracy"], min_rows=1, describe=lambda y, p: {}
    )
    assert {r["slice"]: r["value"] for r in accuracy} == {"F": 1.0, "M": 0.5, MISSING: 1.0}


def test_regression_slices_report_mean_actual_and_predicted_and_the_worst_is_the_highest_rmse() -> (
    None
):
    labels = {"sex": label_slices(FRAME, config())["sex"]}
    y = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 2.0, 4.0, 6.0, 5.0])
    prediction = Prediction(y + np.array([0.0, 0.0, 0.0, 0.0, 2.0, -2.0, 2.0, -2.0, 1.0]))
    rmse = METRICS["rmse"]
    records = measure_slices(
        labels, y, prediction, metric=rmse, min_rows=2, describe=REPORTS["regression"].describe
    )
    by_slice = {r["slice"]: r for r in records}
    assert by_slice["F"]["value"] == 0.0
    assert by_slice["M"]["value"] == 2.0
    assert (by_slice["M"]["mean_actual"], by_slice["M"]["mean_predicted"]) == (3.0, 3.0)
    assert by_slice[MISSING]["status"] == "too small: 1 rows < min_rows 2"
    summary = summarise_slices(records, rmse.greater_is_better)
    assert (summary["worst"], summary["worst_slice"], summary["gap"]) == (2.0, "sex=M", 2.0)
    mape = measure_slices(
        labels, y, prediction, metric=METRICS["mape"], min_rows=2, describe=lambda y, p: {}
    )
    assert {r["slice"]: r["status"] for r in mape}["M"] == (
        "not measurable: an actual value is zero"
    )


def record(attribute: str, name: str, value: float | None) -> dict[str, object]:
    status = "measured" if value is not None else "too small: 1 rows < min_rows 2"
    return {"attribute": attribute, "slice": name, "rows": 1, "value": value, "status": status}


def test_summary_worst_slice_and_widest_gap() -> None:
    records = [
        record("sex", "F", 0.9),
        record("sex", "M", 0.8),
        record("race", "A", 0.95),
        record("race", "B", 0.7),
        record("race", "C", None),
        record("age", "young", 0.6),
    ]
    summary = summarise_slices(records, higher_is_better=True)
    assert summary["worst"] == 0.6
    assert summary["worst_slice"] == "age=young"
    assert (summary["gap"], summary["gap_attribute"]) == (0.25, "race")  # age has one slice
    assert (summary["measured"], summary["too_small"]) == (5, 1)
    assert summarise_slices(records, higher_is_better=False)["worst_slice"] == "race=A"


def test_summary_with_nothing_measured() -> None:
    summary = summarise_slices([record("sex", "F", None)], higher_is_better=True)
    assert summary["worst"] is None
    assert summary["gap"] is None
    assert summary["too_small"] == 1
    assert summary["unmeasured"] == [
        {"slice": "sex=F", "rows": 1, "reason": "too small: 1 rows < min_rows 2"}
    ]


@pytest.mark.parametrize(
    ("slices", "message"),
    [
        ({"columns": ["age"], "bands": {"age": [30]}, "min_rows": 5}, "'age' is listed in both"),
        ({"columns": [], "bands": {"age": [30, 30]}, "min_rows": 5}, "must increase strictly"),
        ({"columns": [], "bands": {}, "min_rows": 0}, "evaluate.slices.min_rows"),
    ],
)
def test_bad_slice_params_are_one_line(slices: dict[str, object], message: str) -> None:
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["evaluate"]["slices"] = slices
    with pytest.raises(UsageError, match=message):
        parse_params(document)
