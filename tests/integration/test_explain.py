"""`mlops explain` on a project trained by `dvc repro` on a small sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.cli import main
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile, tables


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["explain", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, _ = explain(capsys, *args, "--json")
    assert code == 0
    result: dict[str, Any] = json.loads(out)
    return result


def test_a_test_row_traced_through_every_step(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = modelfile.load(Path("models/model.skops"), TRUSTED_TYPES)
    test = pd.read_parquet("data/split/test.parquet")
    features = list(model.feature_names_in_)
    result = as_json(capsys, "--row", "7")
    assert list(result["steps"]) == ["raw", "impute", "encode"]
    assert list(result["steps"]["raw"]) == features
    assert result["quantity"] == "probability of the positive class (1)"
    assert result["value"] == pytest.approx(
        model.predict_proba(test[features].iloc[[7]])[0, 1], abs=1e-6
    )
    assert result["actual"] == int(test["income"].iloc[7])
    assert len(result["contributions"]) == len(features)
    code, text, _ = explain(capsys, "--row", "7", "--top", "3")
    assert code == 0
    assert "after impute" in text
    assert "after encode" in text
    assert f"Probability of the positive class (1): {result['value']:.4f}" in text
    assert all(name in text for name in features)
    moved = text.split("Features that moved it most")[1].strip().splitlines()[1:]
    assert len(moved) == 3


def test_a_row_of_an_input_file_with_gaps(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # adult.test, as production batches will arrive: its labels end in "." and some
    # values are missing ("?").
    source = "data/external/adult/adult.test.gz"
    result = as_json(capsys, "--input", source, "--row", "4")
    assert result["source"] == source
    assert 0.0 <= result["value"] <= 1.0
    raw, imputed = result["steps"]["raw"], result["steps"]["impute"]
    gaps = [name for name, value in raw.items() if value is None]
    assert gaps  # row 4 of adult.test lacks workclass and occupation
    assert all(imputed[name] is not None for name in gaps)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--row", "100000"], "--row 100000: data/split/test.parquet has rows 0 to"),
        (["--row", "-1"], "--row -1: data/split/test.parquet has rows 0 to"),
        (["--top", "0"], "--top 0: expected a positive number"),
        (["--input", "missing.csv"], "missing.csv: input file not found"),
    ],
)
def test_bad_arguments_are_one_line(
    trained: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = explain(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith("mlops explain: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_an_input_without_a_column_the_model_reads(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = files.load_params()
    batch = tables.read_source(params.data, Path("data/external/adult/adult.test.gz")).head(20)
    batch.drop(columns=["occupation"]).to_parquet("batch.parquet")
    code, out, err = explain(capsys, "--input", "batch.parquet")
    assert (code, out) == (2, "")
    assert err == (
        "mlops explain: error: batch.parquet: missing feature column(s) the model reads: "
        "occupation\n"
    )


def test_a_tampered_model_is_not_explained(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = Path("models/model.skops")
    model.write_bytes(model.read_bytes()[:-10])
    code, out, err = explain(capsys, "--row", "0")
    assert (code, out) == (2, "")
    assert "does not match" in err
