"""Ingestion logic: names, types and the target on small hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.config import DataConfig, DecimalMark, Params
from mlops.data.ingestion import (
    accounting,
    grouped_numbers,
    ingest,
    normalise_columns,
    normalise_name,
    type_columns,
    unit_columns,
    unlabelled,
    with_unit,
)
from mlops.errors import CheckFailed, UsageError
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, data_config, diabetes, wine


@pytest.fixture
def config(params) -> DataConfig:  # type: ignore[no-untyped-def]
    return params.data


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("education-num", "education_num"),
        (" Native Country ", "native_country"),
        ("A__b", "a_b"),
        ("âgé 年齢", "âgé_年齢"),  # letters of any script are kept
        ("Âge\u0301", "âgé"),  # a combining accent is part of its letter
        ("Größe (cm)", "größe_cm"),
    ],
)
def test_normalise_name(raw: str, clean: str) -> None:
    assert normalise_name(raw) == clean


def test_names_that_collide_after_normalising_are_refused() -> None:
    with pytest.raises(CheckFailed, match="duplicate column names after normalisation: a_b"):
        normalise_columns(pd.DataFrame({"a-b": [1], "A B": [2]}))


def test_types_numbers_as_float_and_text_as_str() -> None:
    frame = pd.DataFrame({"n": ["1", " 2", None], "t": [" x", "y ", None], "i": [1, 2, 3]})
    original = frame.copy()
    typed = type_columns(frame)
    assert typed["n"].dtype == "float64"
    assert typed["i"].dtype == "float64"
    assert pd.api.types.is_string_dtype(typed["t"])
    assert typed["t"].tolist()[:2] == ["x", "y"]
    assert typed["t"].isna().tolist() == [False, False, True]
    pd.testing.assert_frame_equal(frame, original)


@pytest.mark.parametrize(
    ("values", "decimal", "sign", "numbers"),
    [
        (
            ["$1,234.50", "$3", None, "-$2.5", "$ 7"],
            ".",
            "$",
            [1234.5, 3.0, float("nan"), -2.5, 7.0],
        ),
        (["12.5%", "3%", "100 %", "+0.5%"], ".", "%", [12.5, 3.0, 100.0, 0.5]),
        (["1.234,50 €", "3,5 €", "€-2"], ",", None, None),  # € after some, before others
        (["1.234,50 €", "3,5 €", "-2 €"], ",", "€", [1234.5, 3.5, -2.0]),
        (["£1", "2", "£3.5"], ".", "£", [1.0, 2.0, 3.5]),  # a sign on some is enough
        (["$1", "€2"], ".", None, None),  # two currencies: text
        (["1,2,3%", "4%"], ".", None, None),  # not a number
        (["-$-1"], ".", None, None),  # two minus signs
        (["12", "13"], ".", None, None),  # no sign: a plain number, not this rule's
        (["A1%", "B2%"], ".", None, None),
        # A measurement with its unit after it, the same in every value.
        (["72.9 kg", "50kg", None, "61"], ".", "kg", [72.9, 50.0, float("nan"), 61.0]),
        (["20 °C", "-3,5 °C"], ",", "°C", [20.0, -3.5]),
        (["90 km/h", "120 km/h"], ".", "km/h", [90.0, 120.0]),
        (["1 year", "5 years", "10 years"], ".", "year", [1.0, 5.0, 10.0]),
        (["1.2 GB", "512 MB"], ".", None, None),  # two units: text
        (["10 am", "3 pm"], ".", None, None),
        (["1st", "2nd", "3rd"], ".", None, None),
        (["Model 3", "Model S"], ".", None, None),
        (["12 Main St", "3 Elm St"], ".", None, None),
    ],
)
def test_numbers_with_a_currency_or_percent_sign_or_a_unit_read_as_numbers(
    values: list[str | None], decimal: DecimalMark, sign: str | None, numbers: list[float] | None
) -> None:
    text = pd.Series(values, dtype=object, name="amount")
    found = with_unit(text, decimal)
    if sign is None:
        assert found is None
        return
    assert found is not None
    assert found[0] == sign
    assert found[1].tolist() == pytest.approx(numbers, nan_ok=True)
    typed = type_columns(pd.DataFrame({"amount": values, "name": ["x"] * len(values)}), decimal)
    assert typed["amount"].dtype == "float64"
    assert unit_columns(pd.DataFrame({"Amount": values, "n": range(len(values))}), decimal) == {
        "Amount": sign
    }


@pytest.mark.parametrize(
    ("values", "decimal", "numbers"),
    [
        # A call's length, a race time: each in its last part's unit.
        (["0:29:45", "1:02:03.5", None], ".", [1785.0, 3723.5, float("nan")]),
        (["4:32", "1:04:32"], ".", [272.0, 3872.0]),  # m:ss beside h:mm:ss
        (["14:30", "09:05"], ".", [870.0, 545.0]),  # a time of day, in minutes
        (["0:00:01,25"], ",", [1.25]),
    ],
)
def test_clock_readings_without_a_date_read_as_numbers(
    values: list[str | None], decimal: DecimalMark, numbers: list[float]
) -> None:
    """Read as dates they were "when a row happened", kept out of the model, and dated
    today by pandas."""
    typed = type_columns(pd.DataFrame({"lap": values}), decimal)["lap"]
    assert typed.tolist() == pytest.approx(numbers, nan_ok=True)
    assert unit_columns(pd.DataFrame({"Lap": values}), decimal) == {"Lap": "h:mm:ss"}


@pytest.mark.parametrize(
    "values", [["12:61"], ["2024-01-01 10:00"], ["1:2"], ["10:30", "late"], ["2:30 PM"]]
)
def test_what_is_no_clock_reading_stays_text(values: list[str]) -> None:
    assert not pd.api.types.is_numeric_dtype(type_columns(pd.DataFrame({"t": values}))["t"])


def test_a_duration_column_reads_as_seconds() -> None:
    """Parquet's and Feather's duration type (pandas' timedelta64) was read as the text
    "0 days 00:12:17", a category per value."""
    frame = pd.DataFrame({"wait": pd.to_timedelta([737, None, 1.5], unit="s")})
    assert type_columns(frame)["wait"].tolist() == pytest.approx(
        [737.0, float("nan"), 1.5], nan_ok=True
    )


@pytest.mark.parametrize(
    ("values", "decimal", "form", "numbers"),
    [
        (["1,234.50", "(200.00)", None, "15"], ".", "(1) for -1", [1234.5, -200, float("nan"), 15]),
        (["$1,234.50", "($200.00)", "$ 3"], ".", "(1) for -1", [1234.5, -200.0, 3.0]),
        (["1.234,50", "200,00-", "3"], ",", "1- for -1", [1234.5, -200.0, 3.0]),
        (["1", "( 2 )"], ".", "(1) for -1", [1.0, -2.0]),
        (["(1)", "2-"], ".", None, None),  # negatives written both ways
        (["2019-", "2020-"], ".", None, None),  # every value one: open ranges, not debits
        (["(a)", "1"], ".", None, None),
        (["(1)", "$2"], ".", "(1) for -1", [-1.0, 2.0]),  # a sign on some, as with_unit reads
        (["(1)", "x1"], ".", None, None),
    ],
)
def test_accounting_negatives_read_as_numbers(
    values: list[str | None], decimal: DecimalMark, form: str | None, numbers: list[float] | None
) -> None:
    """Excel's accounting format saves "(200.00)" for -200 as CSV, and SAP exports
    "200.00-": the column was text, a category per amount."""
    found = accounting(pd.Series(values, dtype=object), decimal)
    if form is None:
        assert found is None
        return
    assert found is not None
    assert found[0] == form
    assert found[1].tolist() == pytest.approx(numbers, nan_ok=True)
    typed = type_columns(pd.DataFrame({"amount": values}), decimal)["amount"]
    assert typed.tolist() == pytest.approx(numbers, nan_ok=True)
    assert unit_columns(pd.DataFrame({"Amount": values}), decimal) == {"Amount": form}


@pytest.mark.parametrize(
    ("values", "decimal", "numbers"),
    [
        (["5 914,00", "564,00", None, "-1 000"], ",", [5914.0, 564.0, float("nan"), -1000.0]),
        (["5\u00a0914,5", "12\u202f345"], ",", [5914.5, 12345.0]),  # no-break, narrow spaces
        (["1'234.50", "3.5", "1'000'000"], ".", [1234.5, 3.5, 1e6]),  # Swiss apostrophes
        (["5 914.25", ".5"], ".", [5914.25, 0.5]),
        (["12 3456", "1 000"], ",", None),  # a group of four digits: no number
        (["1 000", "a 1"], ",", None),
        (["1 000,5", "2.5"], ",", None),  # a decimal point beside decimal commas
    ],
)
def test_numbers_with_thousands_grouped_by_spaces_or_apostrophes_read_as_numbers(
    values: list[str | None], decimal: DecimalMark, numbers: list[float] | None
) -> None:
    text = pd.Series(values, dtype=object)
    found = grouped_numbers(text, decimal)
    if numbers is None:
        assert found is None
        return
    assert found is not None
    assert found.tolist() == pytest.approx(numbers, nan_ok=True)
    typed = type_columns(pd.DataFrame({"amount": values}), decimal)
    assert typed["amount"].dtype == "float64"


def test_a_regression_target_written_with_grouped_thousands_is_read_as_numbers(
    config: DataConfig,
) -> None:
    french = config.model_copy(
        update={"target": "price", "task": "regression", "positive_class": None,
                "negative_class": None, "separator": ";", "decimal": ","}
    )  # fmt: skip
    source = pd.DataFrame({"carat": [0.3, 1.2, 0.5], "price": ["564,00", "5 914,00", "1 094,5"]})
    assert ingest(source, french)["price"].tolist() == [564.0, 5914.0, 1094.5]


def test_a_batch_types_signed_numbers_as_its_source_did(config: DataConfig) -> None:
    """The same column, with or without its sign, is the same number at ingest."""
    source = pd.DataFrame({"Fee": ["$1,200.00", "$80.5"], "income": [">50K", "<=50K"]})
    batch = pd.DataFrame({"Fee": [1200, 80.5]})
    assert ingest(source, config)["fee"].tolist() == [1200.0, 80.5]
    assert ingest(batch, config, require_target=False)["fee"].tolist() == [1200.0, 80.5]


def test_columns_named_self_are_ingested(config: DataConfig) -> None:
    """``DataFrame.assign(**{name: ...})`` fails on a column called ``self`` (HMDA has one)."""
    frame = pd.DataFrame({"Self": ["yes", "no", "no"], "Age": [30, 40, 50]})
    labels = {"positive_class": ("yes",), "negative_class": ("no",)}
    out = ingest(frame, config.model_copy(update={"target": "self", "task": "binary", **labels}))
    assert out["self"].tolist() == [1, 0, 0]
    assert list(out.columns) == ["age", "self"]


def test_target_is_mapped_to_0_and_1(config: DataConfig) -> None:
    frame = pd.DataFrame({"Age": [30, 40, 50], "income": ["<=50K", ">50K.", " >50K"]})
    out = ingest(frame, config)
    assert out["income"].tolist() == [0, 1, 1]
    assert list(out.columns) == ["age", "income"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["<=50K", "<=50K"], "holds only the negative class; a binary task needs both"),
        (
            [">50K", "maybe"],
            "has 1 values that are neither data.positive_class nor data.negative_class "
            "(['maybe']); add them to data.positive_class or data.negative_class",
        ),
    ],
)
def test_bad_targets_are_refused(config: DataConfig, labels: list[object], message: str) -> None:
    with pytest.raises(UsageError) as error:
        ingest(pd.DataFrame({"x": [1, 2], "income": labels}), config)
    assert str(error.value) == f"target column 'income' {message}"


def test_missing_target_is_refused_unless_optional(config: DataConfig) -> None:
    with pytest.raises(UsageError, match=r"target column 'income' \(params.yaml data.target\) not"):
        ingest(pd.DataFrame({"x": [1]}), config)
    batch = ingest(pd.DataFrame({"x": ["1"]}), config, require_target=False)
    assert batch["x"].tolist() == [1.0]


def test_an_empty_target_column_is_an_unlabelled_batch(config: DataConfig) -> None:
    frame = pd.DataFrame({"x": ["1", "2"], "income": [None, None]})
    assert ingest(frame, config, require_target=False).to_dict("list") == {"x": [1.0, 2.0]}
    with pytest.raises(UsageError, match=r"^target column 'income' has no value in any row"):
        ingest(frame, config)
    with pytest.raises(UsageError, match="has 2 missing values"):
        ingest(frame, config.model_copy(update={"unlabelled": "fail"}))
    with pytest.raises(UsageError, match="has 1 missing values"):  # some labels: all needed
        ingest(frame.assign(income=[">50K", None]), config, require_target=False)


def test_the_demo_data_quirks_are_handled(adult: pd.DataFrame) -> None:
    assert adult.shape == (32561, 15)
    assert adult["income"].sum() == 7841  # ">50K" rows in adult.data
    missing = adult.isna().sum()
    assert missing[missing > 0].to_dict() == {
        "workclass": 1836,
        "occupation": 1843,
        "native_country": 583,
    }
    assert not adult["workclass"].astype(str).str.startswith(" ").any()


# --- multiclass and regression targets ---------------------------------------------------


def test_a_multiclass_target_keeps_its_labels_as_text(params: Params) -> None:
    out = ingest(wine(), data_config(params, "multiclass"))
    assert out.shape == (178, 14)
    assert "od280_od315_of_diluted_wines" in out.columns
    assert pd.api.types.is_string_dtype(out[WINE_TARGET])
    assert out[WINE_TARGET].value_counts().to_dict() == {
        "class_1": 71,
        "class_0": 59,
        "class_2": 48,
    }


def test_numeric_class_labels_become_text(params: Params) -> None:
    """0, 1.0 and " 2" are three labels: the class list is text, whatever the file held."""
    source = wine().assign(**{WINE_TARGET: [0, 1.0, " 2"] * 59 + [0]})
    out = ingest(source, data_config(params, "multiclass"))
    assert sorted(out[WINE_TARGET].unique()) == ["0", "1", "2"]


def test_data_classes_limits_the_labels(params: Params) -> None:
    allowed = ["class_0", "class_1", "class_2"]
    out = ingest(wine(), data_config(params, "multiclass", classes=allowed))
    assert set(out[WINE_TARGET]) == set(allowed)
    with pytest.raises(UsageError, match=r"labels not in data.classes: \['class_2'\]; add them"):
        ingest(wine(), data_config(params, "multiclass", classes=["class_0", "class_1", "x"]))


def test_a_regression_target_is_a_float(params: Params) -> None:
    source = diabetes()
    out = ingest(source.assign(**{DIABETES_TARGET: source[DIABETES_TARGET].astype(str)}),
                 data_config(params, "regression"))  # fmt: skip
    assert out[DIABETES_TARGET].dtype == "float64"
    assert out[DIABETES_TARGET].tolist() == source[DIABETES_TARGET].tolist()


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_an_unlabelled_batch_needs_no_target(params: Params, task: str) -> None:
    source = wine() if task == "multiclass" else diabetes()
    target = WINE_TARGET if task == "multiclass" else DIABETES_TARGET
    batch = ingest(source.drop(columns=[target]).head(5), data_config(params, task),
                   require_target=False)  # fmt: skip
    assert len(batch) == 5
    assert target not in batch.columns


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_unlabelled_rows_are_left_out_or_refused(params: Params, task: str) -> None:
    """data.unlabelled: drop leaves out exactly the rows without a target (the others
    keep their order and values); fail refuses them in one line naming how many."""
    if task == "binary":
        source = pd.DataFrame(
            {"x": [1, 2, 3, 4, 5], "income": [">50K", None, "<=50K", float("nan"), ">50K"]}
        )
        drop, fail = params.data, params.data.model_copy(update={"unlabelled": "fail"})
        target = "income"
    else:
        clean = wine() if task == "multiclass" else diabetes()
        target = WINE_TARGET if task == "multiclass" else DIABETES_TARGET
        source = clean.assign(**{target: clean[target].where(clean.index % 7 > 0)})
        drop, fail = data_config(params, task), data_config(params, task, unlabelled="fail")
    kept = source[target].notna()
    assert unlabelled(source, drop) == (~kept).sum() > 0
    raw = ingest(source, drop)
    assert len(raw) == kept.sum()
    feature = source.columns[0]
    assert raw[feature].tolist() == source.loc[kept, feature].astype(float).tolist()
    assert raw[target].notna().all()
    with pytest.raises(UsageError) as error:
        ingest(source, fail)
    assert str(error.value) == (
        f"target column {target!r} has {(~kept).sum()} missing values; "
        "drop those rows from the data or label them"
    )


def test_unlabelled_counts_under_the_source_column_name(params: Params) -> None:
    """init counts on the file's own names ("Income"), before they are normalised."""
    source = pd.DataFrame({"Income": [">50K", None, None]})
    assert unlabelled(source, params.data) == 2
    assert unlabelled(pd.DataFrame({"x": [1]}), params.data) == 0


def _spoil(task: str, spoil: object) -> pd.DataFrame:
    source = wine() if task == "multiclass" else diabetes()
    target = WINE_TARGET if task == "multiclass" else DIABETES_TARGET
    assert callable(spoil)
    return source.assign(**{target: spoil(source[target])})


BAD_TARGETS = {
    "multiclass with one class": (
        "multiclass",
        lambda y: "class_0",
        "target column 'cultivar' has 1 class(es) (['class_0']); a multiclass task needs 3 or more",
    ),
    "multiclass with two classes": (
        "multiclass",
        lambda y: y.where(y != "class_2", "class_1"),
        "target column 'cultivar' has 2 class(es) (['class_1', 'class_0']); a multiclass task "
        "needs 3 or more; set data.task: binary",
    ),
    "regression with text": (
        "regression",
        lambda y: y.astype(str).where(y.index % 100 > 0, "high"),
        "target column 'progression' has 5 values that are not finite numbers (['high']); a "
        "regression target must be numeric (or set data.task to binary or multiclass)",
    ),
    "constant regression": (
        "regression",
        lambda y: 1.0,
        "target column 'progression' is constant; nothing to predict",
    ),
}


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_a_target_the_task_cannot_take_is_one_clear_line(params: Params, case: str) -> None:
    task, spoil, message = BAD_TARGETS[case]
    with pytest.raises(UsageError) as error:
        ingest(_spoil(task, spoil), data_config(params, task))
    assert str(error.value) == message


def test_binary_with_three_classes_suggests_multiclass(params: Params) -> None:
    config = data_config(
        params, "binary", target=WINE_TARGET, positive_class=["class_0"], negative_class=["class_1"]
    )
    with pytest.raises(UsageError) as error:
        ingest(wine(), config)
    assert str(error.value) == (
        "target column 'cultivar' has 48 values that are neither data.positive_class nor "
        "data.negative_class (['class_2']); it holds 3 distinct labels: set data.task: multiclass"
    )
