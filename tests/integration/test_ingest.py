"""`mlops ingest` on good and bad sources: one clear line, an exit code, no partial output."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from mlops.cli import main
from mlops.config import PATHS
from tests.conftest import edit_params

HEADER = "age,workclass,income\n"


def _ingest(project: Path, source: str, capsys: pytest.CaptureFixture[str], **data: object) -> str:
    edit_params(project, data={"source": source, "header": True, "columns": None, **data})
    assert main(["ingest"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not PATHS.raw.exists(), "a failed ingest must not leave an output"
    return err


def test_ingest_the_demo_data(project: Path) -> None:
    assert main(["ingest"]) == 0
    raw = pd.read_parquet(PATHS.raw)
    assert raw.shape == (32561, 15)
    assert set(raw["income"].unique()) == {0, 1}


def test_ingest_a_users_parquet_and_gzipped_csv(project: Path) -> None:
    frame = pd.DataFrame({"Age": [30, 40, 50, 60], "Income": [">50K", "<=50K", ">50K", "<=50K"]})
    frame.to_parquet("mine.parquet")
    edit_params(project, data={"source": "mine.parquet", "header": True, "columns": None})
    assert main(["ingest"]) == 0
    assert pd.read_parquet(PATHS.raw)["income"].tolist() == [1, 0, 1, 0]
    Path("mine.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    edit_params(project, data={"source": "mine.csv.gz"})
    assert main(["ingest"]) == 0
    assert pd.read_parquet(PATHS.raw)["age"].tolist() == [30.0, 40.0, 50.0, 60.0]


def test_missing_source(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _ingest(project, "nowhere.csv", capsys)
    assert "nowhere.csv: data source (params.yaml data.source) not found" in err


def test_empty_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("empty.csv").write_text("")
    assert "empty.csv: data source is empty" in _ingest(project, "empty.csv", capsys)


def test_header_only(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("header.csv").write_text(HEADER)
    assert "header.csv: data source has no data rows" in _ingest(project, "header.csv", capsys)


def test_not_csv_or_parquet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    err = _ingest(project, "image.png", capsys)
    assert "image.png: not a CSV or Parquet file" in err


def test_broken_parquet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.parquet").write_bytes(b"PAR1" + b"garbage" * 10)
    assert "bad.parquet: not a readable Parquet file" in _ingest(project, "bad.parquet", capsys)


def test_target_column_missing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text("age,workclass\n30,Private\n")
    err = _ingest(project, "d.csv", capsys)
    assert "target column 'income' (params.yaml data.target) not in the data" in err


def test_target_with_one_class(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text(HEADER + "30,Private,<=50K\n40,Private,<=50K\n")
    assert "holds only the negative class; need both" in _ingest(project, "d.csv", capsys)


def test_target_value_of_neither_class(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text(HEADER + "30,Private,<=50K\n40,Private,rich\n")
    err = _ingest(project, "d.csv", capsys)
    assert "1 values that are neither positive_class nor negative_class" in err
    assert "'rich'" in err


def test_a_failed_ingest_keeps_the_previous_output(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest"]) == 0
    before = PATHS.raw.read_bytes()
    edit_params(project, data={"source": "nowhere.csv"})
    assert main(["ingest"]) == 2
    assert PATHS.raw.read_bytes() == before


def test_bad_params_exit_2_with_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_params(project, split={"test_size": "a fifth"})
    assert main(["ingest"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mlops ingest: error: params.yaml: split.test_size: input should be a valid number "
        "(got 'a fifth')\n"
    )
