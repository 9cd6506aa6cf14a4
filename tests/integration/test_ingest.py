"""`mlops ingest` on good and bad sources: one clear line, an exit code, no partial output."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from mlops.cli import main
from mlops.config import PATHS
from tests.conftest import edit_params
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, diabetes, retask, wine

HEADER = "age,workclass,income\n"


def _ingest(project: Path, source: str, capsys: pytest.CaptureFixture[str], **data: object) -> str:
    edit_params(project, data={"source": source, "header": True, "columns": None, **data})
    return _refused(capsys)


def _refused(capsys: pytest.CaptureFixture[str], command: str = "ingest") -> str:
    """``mlops command`` exits 2 with one line and writes nothing."""
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"mlops {command}: error: ")
    assert "Traceback" not in err
    assert not PATHS.raw.exists(), "a failed ingest must not leave an output"
    assert not PATHS.train.exists()
    assert not PATHS.test.exists()
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
    assert "image.png: not a CSV, Parquet, Feather or JSON file" in err


def test_broken_parquet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.parquet").write_bytes(b"PAR1" + b"garbage" * 10)
    assert "bad.parquet: not a readable Parquet file" in _ingest(project, "bad.parquet", capsys)


def test_target_column_missing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text("age,workclass\n30,Private\n")
    err = _ingest(project, "d.csv", capsys)
    assert "target column 'income' (params.yaml data.target) not in the data" in err


def test_target_with_one_class(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text(HEADER + "30,Private,<=50K\n40,Private,<=50K\n")
    err = _ingest(project, "d.csv", capsys)
    assert "holds only the negative class; a binary task needs both" in err


def test_target_value_of_neither_class(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("d.csv").write_text(HEADER + "30,Private,<=50K\n40,Private,rich\n")
    err = _ingest(project, "d.csv", capsys)
    assert "1 values that are neither data.positive_class nor data.negative_class" in err
    assert "['rich']" in err


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


# --- multiclass and regression ---------------------------------------------------------


def test_ingest_and_split_a_multiclass_csv(project: Path) -> None:
    wine().to_csv("wine.csv", index=False)
    retask(project, "multiclass", source="wine.csv")
    assert main(["ingest"]) == 0
    raw = pd.read_parquet(PATHS.raw)
    assert raw.shape == (178, 14)
    assert raw[WINE_TARGET].value_counts().to_dict() == {
        "class_1": 71,
        "class_0": 59,
        "class_2": 48,
    }
    assert main(["split"]) == 0
    test = pd.read_parquet(PATHS.test)
    assert test[WINE_TARGET].value_counts().to_dict() == {
        "class_1": 14,
        "class_0": 12,
        "class_2": 10,
    }


def test_ingest_and_split_a_regression_csv(project: Path) -> None:
    diabetes().to_csv("diabetes.csv", index=False)
    retask(project, "regression", source="diabetes.csv")
    assert main(["ingest"]) == 0
    raw = pd.read_parquet(PATHS.raw)
    assert raw[DIABETES_TARGET].dtype == "float64"
    assert raw[DIABETES_TARGET].tolist() == diabetes()[DIABETES_TARGET].tolist()
    assert main(["split"]) == 0
    train, test = pd.read_parquet(PATHS.train), pd.read_parquet(PATHS.test)
    assert (len(train), len(test)) == (353, 89)
    # stratified on quantile bins: both parts span the range, with the same median (+-5%)
    assert abs(test[DIABETES_TARGET].median() / raw[DIABETES_TARGET].median() - 1) < 0.05


def _wine_labels(labels: object) -> pd.DataFrame:
    return wine().assign(**{WINE_TARGET: labels})


# Wine told to be binary: class_0 against class_1, and class_2 left over.
BINARY_WINE = {
    "binary": {"target": WINE_TARGET, "positive_class": ["class_0"], "negative_class": ["class_1"]}
}
BAD_TARGETS = {
    "one class": (
        "multiclass",
        lambda: _wine_labels("class_0"),
        "target column 'cultivar' has 1 class(es) (['class_0']); a multiclass task needs 3 or more",
    ),
    "text in a regression target": (
        "regression",
        lambda: diabetes().assign(**{DIABETES_TARGET: ["high"] + [1.0] * 441}),
        "target column 'progression' has 1 values that are not finite numbers (['high']); a "
        "regression target must be numeric (or set data.task to binary or multiclass)",
    ),
    "binary with three classes": (
        "binary",
        wine,
        "target column 'cultivar' has 48 values that are neither data.positive_class nor "
        "data.negative_class (['class_2']); it holds 3 distinct labels: set data.task: multiclass",
    ),
}


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_a_target_the_task_cannot_take(
    project: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    task, source, message = BAD_TARGETS[case]
    source().to_csv("d.csv", index=False)
    retask(project, task, source="d.csv", **BINARY_WINE.get(task, {}))
    assert _refused(capsys) == f"mlops ingest: error: {message}\n"


def test_unlabelled_rows_are_left_out_and_counted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows with no target value are left out as the source is read, and ingest says how
    many; data.unlabelled: fail refuses the same file in one line and writes nothing."""
    _wine_labels(wine()[WINE_TARGET].where(lambda y: y.index % 50 > 0)).to_csv(
        "wine.csv", index=False
    )
    retask(project, "multiclass", source="wine.csv")
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out == (
        "mlops ingest: 174 rows; left out 4 without a cultivar value "
        "(params.yaml data.unlabelled: drop)\n"
    )
    raw = pd.read_parquet(PATHS.raw)
    assert len(raw) == 174
    assert raw[WINE_TARGET].notna().all()
    PATHS.raw.unlink()
    edit_params(project, data={"unlabelled": "fail"})
    assert _refused(capsys) == (
        "mlops ingest: error: target column 'cultivar' has 4 missing values; drop those rows "
        "from the data or label them\n"
    )


def test_a_rare_class_is_left_out_at_split_or_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A class seen once can't be both trained and tested: split leaves its rows out and
    names it (split.rare_classes: drop), or refuses in one line with nothing written (fail)."""
    _wine_labels(wine()[WINE_TARGET].where(lambda y: y.index != 7, "class_9")).to_csv(
        "wine.csv", index=False
    )
    retask(project, "multiclass", source="wine.csv")
    assert main(["ingest"]) == 0
    assert main(["split"]) == 0
    assert capsys.readouterr().out == (
        "mlops split: left out 1 row of the classes seen fewer than 4 times, too few to split "
        "and cross-validate: 'class_9' (1 row); the model never predicts them (params.yaml "
        "split.rare_classes: drop)\n"
    )
    train, test = pd.read_parquet(PATHS.train), pd.read_parquet(PATHS.test)
    assert len(train) + len(test) == 177
    assert "class_9" not in {*train[WINE_TARGET], *test[WINE_TARGET]}
    PATHS.train.unlink()
    PATHS.test.unlink()
    edit_params(project, split={"rare_classes": "fail"})
    assert main(["split"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mlops split: error: train/test split of data.target 'cultivar': 2 parts need at least "
        "2 rows of each class; class(es) ['class_9'] have 1; drop or relabel those rows, "
        "or use fewer parts\n"
    )
    assert not PATHS.train.exists()
    assert not PATHS.test.exists()


def test_data_drop_leaves_columns_out_of_the_source_and_the_extra_files(project: Path) -> None:
    """A column listed in data.drop is never read: not in the raw data, and labelled
    production rows (which the log never gave it) still append."""
    frame = pd.DataFrame(
        {"Age": [30, 40, 50, 60], "Notes": [None] * 4, "Income": [">50K", "<=50K"] * 2}
    )
    frame.to_csv("mine.csv", index=False)
    Path("extra").mkdir()
    frame.drop(columns=["Notes"]).head(1).to_parquet("extra/labelled.parquet")
    edit_params(
        project,
        data={
            "source": "mine.csv",
            "header": True,
            "columns": None,
            "drop": ["Notes"],
            "extra_data": "extra",
        },
    )
    assert main(["ingest"]) == 0
    raw = pd.read_parquet(PATHS.raw)
    assert list(raw.columns) == ["age", "income"]
    assert raw["income"].tolist() == [1, 0, 1, 0, 1]


def test_data_drop_naming_a_column_the_source_lacks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("mine.csv").write_text(HEADER + "30,Private,>50K\n40,Private,<=50K\n")
    err = _ingest(project, "mine.csv", capsys, drop=["nots"])
    assert "params.yaml data.drop names 'nots', which mine.csv lacks" in err
    assert "(age, income, workclass)" in err
