"""The labels file monitor and respond read (mlops.io.labels): any --input format, the
request ids as written, one line when a column is missing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from mlops.config import DataConfig, Params
from mlops.errors import UsageError
from mlops.io.labels import read_labels


@pytest.fixture
def config(params: Params) -> DataConfig:
    return params.data  # the demo's: target income, binary


def test_a_gzipped_semicolon_csv_keeps_the_ids_as_written(
    config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / "labels.csv.gz"
    path.write_bytes(gzip.compress(b"Request ID;Income\n00123;>50K\n7;<=50K\n"))
    labels = read_labels(path, config)
    assert labels.to_dict("list") == {"request_id": ["00123", "7"], "income": [">50K", "<=50K"]}


def test_parquet_is_told_by_content(config: DataConfig, tmp_path: Path) -> None:
    path = tmp_path / "labels.data"
    pd.DataFrame({"request_id": ["a", "b"], "income": [">50K", "<=50K"]}).to_parquet(path)
    assert read_labels(path, config)["request_id"].tolist() == ["a", "b"]


def test_decimal_commas_are_numbers(config: DataConfig, tmp_path: Path) -> None:
    regression = config.model_copy(
        update={
            "target": "price",
            "task": "regression",
            "positive_class": None,
            "negative_class": None,
        }
    )
    path = tmp_path / "labels.csv"
    path.write_text("request_id;price\nx;1,5\ny;-0,25\n")
    assert read_labels(path, regression)["price"].tolist() == [1.5, -0.25]


@pytest.mark.parametrize(
    ("text", "missing"),
    [("request_id,other\na,1\n", "income"), ("id,income\na,>50K\n", "request_id")],
)
def test_a_missing_column_is_one_line(
    config: DataConfig, tmp_path: Path, text: str, missing: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    headed = config.model_copy(update={"header": True, "columns": None})  # a user's own data
    with pytest.raises(UsageError) as caught:
        read_labels(path, headed)
    message = str(caught.value)
    assert "\n" not in message
    assert f"lacks column(s) {missing}" in message
