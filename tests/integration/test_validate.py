"""The validate stage and `mlops schema infer` end to end on the command line.

Every bad input ends in one line naming the file, column and check, a non-zero
exit code, no traceback, and no report written or changed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from tests.conftest import edit_params
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, diabetes, retask, wine

RAW = Path("data/raw/dataset.parquet")
TRAIN = Path("data/split/train.parquet")
REPORT = Path("reports/validation.json")
SUMMARY = Path("reports/validation.md")
BEFORE = '{"passed": true, "from": "an earlier run"}\n'


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def one_line(err: str) -> str:
    assert err.count("\n") == 0, err
    return err


@pytest.fixture
def project(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What validation reads (params.yaml, the contract), as the working directory.

    Lighter than the shared ``project`` fixture: these commands need neither git nor DVC.
    """
    (tmp_path / "data").mkdir()
    shutil.copy2(root / "params.yaml", tmp_path / "params.yaml")
    shutil.copy2(root / "data/schema.yaml", tmp_path / "data/schema.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def pipeline(project: Path, adult_sample: pd.DataFrame) -> Path:
    """The project with the ingest and split outputs in place (from the small sample)."""
    RAW.parent.mkdir(parents=True, exist_ok=True)
    TRAIN.parent.mkdir(parents=True, exist_ok=True)
    adult_sample.to_parquet(RAW, index=False)
    adult_sample.to_parquet(TRAIN, index=False)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(BEFORE)
    return project


def as_source(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``rows`` rows of both classes as a source file holds them: text labels in the target."""
    batch = frame.sample(n=rows, random_state=0).reset_index(drop=True)
    return batch.assign(income=batch["income"].map({1: ">50K", 0: "<=50K"}))


# --- the pipeline run ------------------------------------------------------------------


def test_pipeline_run_writes_both_reports(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "validate") == (0, "")
    report = json.loads(REPORT.read_text())
    assert report["passed"] is True
    assert report["protected"] == ["race", "sex", "native_country"]
    assert not set(report["protected"]) & set(report["features"])
    assert report["quality"]["failing"] == ["workclass", "occupation"]
    assert set(report["importance"]["features"]) == set(report["features"])
    assert report["importance"]["held_out_rows"] == 900
    assert SUMMARY.read_text().startswith("# Data validation: passed")


def test_value_skew_at_a_low_rate_is_reported_and_passes(
    pipeline: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = adult_sample.copy()
    data.loc[:4, "native_country"] = "Atlantis"  # 5 of 3000 rows
    data.loc[7, "age"] = 95.0
    data.to_parquet(RAW, index=False)
    assert cli(capsys, "validate") == (0, "")
    report = json.loads(REPORT.read_text())
    assert [(f["column"], f["check"], f["fatal"]) for f in report["failures"]] == [
        ("age", "in_range", False),
        ("native_country", "isin", False),
    ]
    assert report["skew"] == {"max_value_skew": 0.01, "schema": 0, "value": 2, "fatal": 0}
    assert report["quality"]["features"]["native_country"]["unseen_rate"] == round(5 / 3000, 6)


def _mistype(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(age=d["age"].astype("str"))


def _infinite(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(hours_per_week=d["hours_per_week"].where(d.index > 1, np.inf))


def _unseen(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(native_country=d["native_country"].where(d.index % 10 > 0, "Atlantis"))


def _emails(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(occupation=[f"worker{i}@example.com" for i in range(len(d))])


BAD_DATA: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "wrong type": (_mistype, "column 'age' failed dtype('float64'): got str"),
    "missing column": (
        lambda d: d.drop(columns=["education"]),
        "column 'education' is in the contract but not in the data (column_in_dataframe)",
    ),
    "extra column": (
        lambda d: d.assign(bonus=1.0),
        "column 'bonus' is not in the contract (column_in_schema; "
        "params.yaml validate.extra_columns: fail)",
    ),
    "all-null column": (
        lambda d: d.assign(occupation=pd.Series(pd.NA, index=d.index, dtype="str")),
        "column 'occupation' failed all_null: every one of 3000 values is missing",
    ),
    "infinite values": (
        _infinite,
        "column 'hours_per_week' failed finite in 2 of 3000 rows (<0.1%; schema skew)",
    ),
    "category outside the contract": (
        _unseen,
        "column 'native_country' failed isin(…) in 300 of 3000 rows "
        "(10.0% > max_value_skew 1.0%; value skew), e.g. ['Atlantis']",
    ),
    "target with an unknown label": (
        lambda d: d.assign(income=d["income"].where(d.index > 0, 2)),
        "column 'income' failed isin([0, 1]) in 1 of 3000 rows (<0.1%; schema skew), e.g. [2]",
    ),
    "text column with e-mail addresses": (
        _emails,
        "column 'occupation' holds personal data (email in its values: 3000 of 3000 distinct",
    ),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_stops_the_pipeline_without_a_report(
    pipeline: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    spoil, expected = BAD_DATA[case]
    spoil(adult_sample).to_parquet(RAW, index=False)
    code, err = cli(capsys, "validate")
    assert code == 1
    assert one_line(err).startswith(f"mlops validate: error: {RAW}: validation failed: ")
    assert expected in err
    assert REPORT.read_text() == BEFORE
    assert not SUMMARY.exists()


def test_the_full_failure_report_is_written_only_when_asked_for(
    pipeline: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _mistype(_infinite(adult_sample)).to_parquet(RAW, index=False)
    code, err = cli(capsys, "validate", "--report", "out/failed.json")
    assert code == 1
    assert "; 1 more (all: mlops validate --report FILE)" in one_line(err)
    report = json.loads(Path("out/failed.json").read_text())
    assert report["passed"] is False
    assert [(f["column"], f["check"]) for f in report["failures"]] == [
        ("age", "dtype"),
        ("hours_per_week", "finite"),
    ]
    assert REPORT.read_text() == BEFORE


# --- the contract file and params -----------------------------------------------------


def _edit_schema(edit: Callable[[dict[str, object]], None]) -> None:
    path = Path("data/schema.yaml")
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_a_malformed_schema_is_a_usage_error(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("data/schema.yaml").write_text("columns:\n  age: {dtype: float64\n")
    code, err = cli(capsys, "validate")
    assert code == 2
    assert one_line(err).startswith(
        "mlops validate: error: data/schema.yaml: data contract is not valid YAML"
    )
    assert REPORT.read_text() == BEFORE


def test_a_schema_with_a_mistyped_check_is_a_usage_error(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit_schema(lambda d: d["columns"]["age"].update({"in_rnge": {"min_value": 0}}))  # type: ignore[attr-defined]
    code, err = cli(capsys, "validate")
    assert (code, one_line(err)) == (
        2,
        "mlops validate: error: data/schema.yaml: column 'age': unknown key or check 'in_rnge'",
    )
    assert REPORT.read_text() == BEFORE


def test_a_schema_naming_a_column_the_data_lacks(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit_schema(lambda d: d["columns"].update({"religion": {"dtype": "str"}}))  # type: ignore[attr-defined]
    code, err = cli(capsys, "validate")
    assert code == 1
    assert "column 'religion' is in the contract but not in the data" in one_line(err)
    assert REPORT.read_text() == BEFORE


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"protected": ["race", "religion"]}, "validate.protected: 'religion' is not a column"),
        ({"qa_threshold": 1.5}, "validate.qa_threshold: input should be less than or equal to 1"),
        ({"privacy": {"drop": ["x"], "allow": ["x"], "max_values": 10}}, "both dropped and"),
    ],
)
def test_bad_params_are_usage_errors(
    pipeline: Path, capsys: pytest.CaptureFixture[str], section: dict[str, object], message: str
) -> None:
    edit_params(pipeline, validate=section)
    code, err = cli(capsys, "validate")
    assert code == 2
    assert message in one_line(err)
    assert REPORT.read_text() == BEFORE


def test_extra_columns_can_be_dropped_by_policy(
    pipeline: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    adult_sample.assign(bonus=1.0).to_parquet(RAW, index=False)
    edit_params(pipeline, validate={"extra_columns": "drop"})
    assert cli(capsys, "validate") == (0, "")
    report = json.loads(REPORT.read_text())
    assert report["extra_columns"] == {"policy": "drop", "found": ["bonus"]}
    assert "bonus" not in report["features"]


# --- validate --input: any file on demand ---------------------------------------------


def test_a_serving_batch_without_target_validates(
    project: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    adult_sample.drop(columns=["income"]).head(50).to_parquet("batch.parquet")
    assert cli(capsys, "validate", "--input", "batch.parquet") == (0, "")
    assert not REPORT.exists()  # on demand, reports go only where asked
    code, _ = cli(capsys, "validate", "--input", "batch.parquet", "--report", "b.json")
    assert code == 0
    report = json.loads(Path("b.json").read_text())
    assert (report["passed"], report["rows"], report["importance"]) == (True, 50, None)


@pytest.mark.parametrize(
    ("spoil", "outcome"),
    [
        (
            lambda d: d.assign(income=d["income"].where(d.index > 0, "maybe")),
            (2, "batch.parquet: target column 'income' has 1 values that are neither"),
        ),
        (
            lambda d: d.assign(**{"Education-Num": d["education_num"]}),
            (1, "batch.parquet: duplicate column names: education_num"),
        ),
        (
            lambda d: d.assign(age=d["age"].astype("str").where(d.index > 0, "old")),
            (1, "batch.parquet: validation failed: column 'age' failed dtype('float64'): got str"),
        ),
    ],
)
def test_bad_batches_fail_on_demand(
    project: Path,
    adult_sample: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    outcome: tuple[int, str],
) -> None:
    spoil(as_source(adult_sample, 200)).to_parquet("batch.parquet")
    code, err = cli(capsys, "validate", "--input", "batch.parquet")
    assert code == outcome[0]  # a bad label is bad input (2), bad data fails a check (1)
    assert outcome[1] in one_line(err)


def test_a_repeated_csv_header_is_a_duplicate_column(
    project: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(project, data={"header": True, "columns": None})
    batch = as_source(adult_sample, 20)
    batch.insert(1, "age ", batch["age"], allow_duplicates=True)
    batch.rename(columns={"age ": "age"}).to_csv("batch.csv", index=False)
    code, err = cli(capsys, "validate", "--input", "batch.csv", "--report", "b.json")
    assert (code, one_line(err)) == (
        1,
        "mlops validate: error: batch.csv: duplicate column names: age",
    )
    assert not Path("b.json").exists()


def test_an_extra_column_of_emails_fails_even_when_extra_columns_are_allowed(
    project: Path, adult_sample: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(project, validate={"extra_columns": "allow"})
    batch = as_source(adult_sample, 100)
    batch.assign(contact=[f"c{i}@mail.example.org" for i in range(100)]).to_parquet("b.parquet")
    code, err = cli(capsys, "validate", "--input", "b.parquet")
    assert code == 1
    assert "column 'contact' holds personal data (email" in one_line(err)
    edit_params(project, validate={"privacy": {"drop": ["contact"], "allow": [], "max_values": 10}})
    assert cli(capsys, "validate", "--input", "b.parquet") == (0, "")


# --- mlops schema infer ---------------------------------------------------------------


def test_schema_infer_drafts_a_contract_the_data_passes(
    project: Path, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(root / "data/external/adult/adult.test.gz")
    code, _ = cli(capsys, "schema", "infer", "--input", source, "--out", "data/schema.yaml")
    assert code == 0
    text = Path("data/schema.yaml").read_text()
    assert text.startswith("# The data contract, in pandera's YAML format")
    assert f"# Drafted by `mlops schema infer` from {source}." in text
    document = yaml.safe_load(text)
    assert document["columns"]["workclass"]["dtype"] == "str"
    assert document["columns"]["income"]["isin"] == [0, 1]
    code, _ = cli(capsys, "validate", "--input", source, "--report", "v.json")
    assert code == 0
    assert json.loads(Path("v.json").read_text())["failures"] == []


def test_schema_infer_names_the_row_identifiers_and_validate_leaves_them_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV written with R's row names: drafted as an identifier (no range, so new rows
    with new numbers pass), said so on stdout, and never a feature."""
    wine().rename_axis("rownames").reset_index().assign(rownames=lambda f: f.rownames + 1).to_csv(
        "data.csv", index=False
    )
    retask_validation(project, "multiclass")
    assert main(["schema", "infer", "--input", "data.csv", "--out", "data/schema.yaml"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "rownames: identifies rows (the whole numbers 1 to 178, one per row): drafted with no "
        "range, never a feature\n"
    )
    drafted = yaml.safe_load(Path("data/schema.yaml").read_text())["columns"]["rownames"]
    assert "in_range" not in drafted
    assert drafted["description"].startswith("identifies rows")
    new = pd.read_csv("data.csv").head(40).drop(columns=[WINE_TARGET])  # a serving batch
    new.assign(rownames=new["rownames"] + 1000).to_csv("new.csv", index=False)
    assert cli(capsys, "validate", "--input", "new.csv", "--report", "v.json") == (0, "")
    report = json.loads(Path("v.json").read_text())
    assert report["failures"] == []
    assert "rownames" not in report["features"]


@pytest.mark.parametrize(
    "case",
    [
        (["--input", "nowhere.csv"], 2, "nowhere.csv: input file not found"),
        (["--input", "dup.parquet"], 1, "dup.parquet: duplicate column names: age"),
    ],
)
def test_schema_infer_refuses_bad_input_and_writes_nothing(
    project: Path,
    adult_sample: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], int, str],
) -> None:
    args, code, message = case
    as_source(adult_sample, 10).assign(Age=1.0).to_parquet("dup.parquet")
    result, err = cli(capsys, "schema", "infer", *args, "--out", "draft.yaml")
    assert result == code
    assert one_line(err) == f"mlops schema: error: {message}"
    assert not Path("draft.yaml").exists()


# --- multiclass and regression: schema infer, then the pipeline's validate -------------


def retask_validation(project: Path, task: str) -> None:
    """params.yaml for data.csv of ``task``, without the demo's column policies."""
    retask(project, task)
    quality = {"sentinels": {}, "max_categories": 100}
    edit_params(project, validate={"protected": [], "quality": quality})


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_infer_then_validate_another_task(
    project: Path, capsys: pytest.CaptureFixture[str], task: str
) -> None:
    """The drafted contract holds the task's target (the classes seen; any number), the
    data passes it, and feature value is measured with the task's probe and metric."""
    source, target = (
        (wine(), WINE_TARGET) if task == "multiclass" else (diabetes(), DIABETES_TARGET)
    )
    source.assign(noise=np.random.default_rng(0).normal(size=len(source))).to_csv(
        "data.csv", index=False
    )
    retask_validation(project, task)
    code, _ = cli(capsys, "schema", "infer", "--input", "data.csv", "--out", "data/schema.yaml")
    assert code == 0
    drafted = yaml.safe_load(Path("data/schema.yaml").read_text())["columns"][target]
    if task == "multiclass":
        assert drafted == {"dtype": "str", "nullable": False,
                           "isin": ["class_0", "class_1", "class_2"]}  # fmt: skip
    else:
        assert drafted == {"dtype": "float64", "nullable": False}
    for command in ("ingest", "split", "validate"):
        assert cli(capsys, command) == (0, "")
    report = json.loads(REPORT.read_text())
    assert (report["passed"], report["failures"], report["target"]) == (True, [], target)
    importance = report["importance"]
    assert importance["scoring"] == ("log_loss" if task == "multiclass" else "rmse")
    assert "noise" in importance["indistinguishable_from_zero"]
    best = max(importance["features"], key=lambda name: importance["features"][name]["mean"])
    assert best in ({"proline", "flavanoids", "color_intensity"} if task == "multiclass"
                    else {"s5", "bmi"})  # fmt: skip
    text = SUMMARY.read_text()
    assert "class" not in text.replace("class_", "")  # no class talk for a regression


def test_a_constant_target_fails_validation_of_a_regression(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diabetes().to_csv("data.csv", index=False)
    retask_validation(project, "regression")
    assert (
        cli(capsys, "schema", "infer", "--input", "data.csv", "--out", "data/schema.yaml")[0] == 0
    )
    for command in ("ingest", "split"):
        assert cli(capsys, command) == (0, "")
    pd.read_parquet(RAW).assign(**{DIABETES_TARGET: 1.0}).to_parquet(RAW)
    code, err = cli(capsys, "validate")
    assert code == 1
    assert one_line(err).startswith(
        f"mlops validate: error: {RAW}: validation failed: column 'progression' failed "
        "target_not_constant in 442 of 442 rows"
    )
    assert not REPORT.exists()


@pytest.mark.parametrize(
    ("task", "spoil", "message"),
    [
        (
            "multiclass",
            lambda d: d.assign(cultivar="class_0"),
            "data.csv: target column 'cultivar' has 1 class(es) (['class_0']); a multiclass "
            "task needs 3 or more",
        ),
        (
            "regression",
            lambda d: d.assign(progression=d["progression"].astype(str).where(d.index > 0, "?!")),
            "data.csv: target column 'progression' has 1 values that are not finite numbers",
        ),
    ],
)
def test_schema_infer_refuses_a_target_the_task_cannot_take(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    task: str,
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    spoil(wine() if task == "multiclass" else diabetes()).to_csv("data.csv", index=False)
    retask(project, task)
    code, err = cli(capsys, "schema", "infer", "--input", "data.csv", "--out", "draft.yaml")
    assert code == 2
    assert one_line(err).startswith(f"mlops schema: error: {message}")
    assert not Path("draft.yaml").exists()
