"""Ingestion logic: names, types and the target on small hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.config import DataConfig
from mlops.errors import CheckFailed
from mlops.ingestion import ingest, normalise_columns, normalise_name, type_columns


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


def test_target_is_mapped_to_0_and_1(config: DataConfig) -> None:
    frame = pd.DataFrame({"Age": [30, 40, 50], "income": ["<=50K", ">50K.", " >50K"]})
    out = ingest(frame, config)
    assert out["income"].tolist() == [0, 1, 1]
    assert list(out.columns) == ["age", "income"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["<=50K", "<=50K"], "holds only the negative class"),
        ([">50K", "maybe"], "neither positive_class nor negative_class in params.yaml: 'maybe'"),
        ([">50K", None], "has 1 missing values"),
    ],
)
def test_bad_targets_are_refused(config: DataConfig, labels: list[object], message: str) -> None:
    with pytest.raises(CheckFailed, match=message):
        ingest(pd.DataFrame({"x": [1, 2], "income": labels}), config)


def test_missing_target_is_refused_unless_optional(config: DataConfig) -> None:
    with pytest.raises(CheckFailed, match="target column 'income'"):
        ingest(pd.DataFrame({"x": [1]}), config)
    batch = ingest(pd.DataFrame({"x": ["1"]}), config, require_target=False)
    assert batch["x"].tolist() == [1.0]


def test_an_empty_target_column_is_an_unlabelled_batch(config: DataConfig) -> None:
    frame = pd.DataFrame({"x": ["1", "2"], "income": [None, None]})
    assert ingest(frame, config, require_target=False).to_dict("list") == {"x": [1.0, 2.0]}
    with pytest.raises(CheckFailed, match="has 2 missing values"):
        ingest(frame, config)
    with pytest.raises(CheckFailed, match="has 1 missing values"):  # some labels: all needed
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
