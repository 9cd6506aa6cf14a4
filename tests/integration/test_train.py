"""`mlops train` on a sample of the training split (params.yaml train.max_rows), and
evaluate measuring the model on the rows it was fitted on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops.io import files
from tests.conftest import edit_params
from tests.model.trained import run

SAMPLE = 600


def _json(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads(Path(path).read_text())


def test_a_sample_is_fitted_and_evaluated_as_fitted(trained: Path) -> None:
    split = pd.read_parquet("data/split/train.parquet")
    before = files.file_md5(Path("models/model.skops"))
    assert "sampled_from_rows" not in _json("models/model_card.json")["training_data"]

    edit_params(trained, train={"max_rows": SAMPLE})
    result = run(trained, "dvc", "repro", "evaluate")
    assert result.returncode == 0, result.stdout + result.stderr

    assert "Running stage 'tune'" not in result.stdout  # tuning's own sample is its own
    assert files.file_md5(Path("models/model.skops")) != before
    card = _json("models/model_card.json")["training_data"]
    assert (card["rows"], card["sampled_from_rows"]) == (SAMPLE, len(split))
    test = pd.read_parquet("data/split/test.parquet")
    # The train score (overfitting) and the baselines on the fitted rows; the whole test split.
    assert _json("reports/evaluation.json")["rows"] == {"train": SAMPLE, "test": len(test)}

    # Back to every row: the model fitted before, byte for byte (seeded).
    edit_params(trained, train={"max_rows": None})
    result = run(trained, "dvc", "repro", "evaluate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert files.file_md5(Path("models/model.skops")) == before
    assert _json("reports/evaluation.json")["rows"]["train"] == len(split)


@pytest.mark.parametrize("value", [0, "1000"])
def test_a_bad_max_rows_is_one_line_and_changes_nothing(trained: Path, value: object) -> None:
    before = files.file_md5(Path("models/model.skops"))
    edit_params(trained, train={"max_rows": value})
    result = run(trained, "mlops", "train")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "train.max_rows" in result.stderr
    assert "Traceback" not in result.stderr
    assert files.file_md5(Path("models/model.skops")) == before
