"""Extra data (labelled production rows) appended to the source by the ingest stage."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.data.ingestion import append_extra
from mlops.errors import UsageError


def test_extra_rows_are_appended_by_normalised_column_name() -> None:
    source = pd.DataFrame({"Age": [30.0], "education-num": [9.0], "income": ["<=50K"]})
    extra = pd.DataFrame({"income": [">50K"], "education_num": [13.0], "age": [45.0]})
    combined = append_extra(source, [("extra.parquet", extra)])
    assert list(combined.columns) == ["age", "education_num", "income"]
    assert combined.to_dict("list") == {
        "age": [30.0, 45.0],
        "education_num": [9.0, 13.0],
        "income": ["<=50K", ">50K"],
    }


def test_no_extra_data_leaves_the_source_as_it_is() -> None:
    source = pd.DataFrame({"Age": [30.0]})
    assert append_extra(source, []) is source


def test_an_extra_file_with_other_columns_is_refused_naming_it() -> None:
    source = pd.DataFrame({"age": [30.0], "income": ["<=50K"]})
    extra = pd.DataFrame({"age": [45.0], "salary": [1.0]})
    with pytest.raises(UsageError, match=r"^extra\.parquet: its columns differ .*income, salary"):
        append_extra(source, [("extra.parquet", extra)])
