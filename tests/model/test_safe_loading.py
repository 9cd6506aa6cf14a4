"""Safe model files: only reviewed types load, and only the bytes dvc.lock recorded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops.errors import UsageError
from mlops.features.imputation import ImputationPlan
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import dvc, files, modelfile
from tests.conftest import ROOT

MODEL = Path("models/model.skops")
LOCK = Path("dvc.lock")


def write_lock(md5: str, path: Path = MODEL) -> None:
    """A dvc.lock as DVC writes it, recording ``md5`` for ``path``."""
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {
                "cmd": "mlops train",
                "deps": [{"path": "data/split/train.parquet", "hash": "md5", "md5": "0" * 32}],
                "outs": [{"path": path.as_posix(), "hash": "md5", "md5": md5, "size": 1}],
            }
        },
    }
    LOCK.write_text(yaml.safe_dump(lock))


@pytest.fixture
def saved(model: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's model saved as the pipeline would, with its md5 in dvc.lock."""
    monkeypatch.chdir(tmp_path)
    modelfile.dump(MODEL, model)
    write_lock(files.file_md5(MODEL))
    return MODEL


def test_an_intact_model_loads_and_predicts_the_same(
    saved: Path, model: Pipeline, plan: ImputationPlan, splits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    loaded = modelfile.load_verified(saved, TRUSTED_TYPES, LOCK)
    rows = splits[1][plan.names()].head(50)
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))


def assert_refused(match: str) -> None:
    with pytest.raises(UsageError, match=match) as error:
        modelfile.load_verified(MODEL, TRUSTED_TYPES, LOCK)
    assert "\n" not in str(error.value)


def test_a_tampered_model_is_refused(saved: Path, model: Pipeline) -> None:
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    saved.write_bytes(bytes(data))
    assert_refused(r"^models/model.skops: md5 \w{32} does not match \w{32} recorded in dvc.lock")


def test_a_swapped_but_valid_model_is_refused(saved: Path, model: Pipeline) -> None:
    modelfile.dump(saved, make_pipeline(FunctionTransformer()))  # loadable, but not this model
    assert_refused("refusing a model file changed outside the pipeline")


def test_a_foreign_model_with_untrusted_types_is_refused(saved: Path) -> None:
    # os.system would run on load-and-predict; skops lists it, the reviewed list lacks it.
    modelfile.dump(saved, make_pipeline(FunctionTransformer(os.system)))
    write_lock(files.file_md5(saved))  # even when dvc.lock vouches for the bytes
    assert_refused(r"model file contains untrusted types: (posix|nt)\.system")


def test_a_file_that_is_not_a_skops_model_is_refused(saved: Path) -> None:
    saved.write_text("not a model")
    write_lock(files.file_md5(saved))
    assert_refused("not a skops model file")


def test_without_a_lock_entry_the_type_check_still_applies(saved: Path, model: Pipeline) -> None:
    write_lock("f" * 32, path=Path("models/other.skops"))
    assert dvc.expected_md5(LOCK, saved) is None
    assert modelfile.load_verified(saved, TRUSTED_TYPES, LOCK) is not None


def test_without_a_lock_file_no_model_is_loaded(saved: Path) -> None:
    LOCK.unlink()
    assert_refused(r"^models/model.skops: no dvc.lock to check its md5 against; refusing")


def test_expected_md5_from_the_projects_own_lock_file() -> None:
    md5 = dvc.expected_md5(ROOT / "dvc.lock", MODEL)
    assert md5 is not None
    assert len(md5) == 32
    assert dvc.expected_md5(ROOT / "no-such.lock", MODEL) is None


@pytest.mark.parametrize("text", ["stages: [1, 2]\n", "- a list\n", "key: [unclosed\n"])
def test_a_corrupt_lock_file_is_one_line(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    LOCK.write_text(text)
    with pytest.raises(UsageError, match=r"^dvc.lock: ") as error:
        dvc.expected_md5(LOCK, MODEL)
    assert "\n" not in str(error.value)


def test_a_missing_model_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"^models/model\.skops: model file not found$"):
        modelfile.load_verified(MODEL, TRUSTED_TYPES, LOCK)
