"""Disk access: atomic writes and byte-reproducible model files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops.errors import UsageError
from mlops.io import files, modelfile


def _model(seed: int) -> object:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, x[:, 0] > 0)


def test_model_bytes_do_not_depend_on_time_or_object_ids(tmp_path: Path) -> None:
    modelfile.dump(tmp_path / "a.skops", _model(0))
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    modelfile.dump(tmp_path / "b.skops", _model(0))
    assert (tmp_path / "a.skops").read_bytes() == (tmp_path / "b.skops").read_bytes()
    modelfile.dump(tmp_path / "c.skops", _model(1))
    assert (tmp_path / "a.skops").read_bytes() != (tmp_path / "c.skops").read_bytes()


def test_canonical_model_loads_and_predicts_the_same(tmp_path: Path) -> None:
    model = _model(0)
    modelfile.dump(tmp_path / "m.skops", model)
    loaded = modelfile.load(tmp_path / "m.skops", trusted=[])
    x = np.random.default_rng(5).normal(size=(10, 3))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))  # type: ignore[attr-defined]


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(60, 2))
    modelfile.dump(
        tmp_path / "m.skops", HistGradientBoostingClassifier(max_iter=2).fit(x, x[:, 0] > 0)
    )
    with pytest.raises(UsageError, match=r"untrusted types: .*TreePredictor"):
        modelfile.load(tmp_path / "m.skops", trusted=["numpy.dtype"])


def test_a_foreign_file_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "m.skops").write_text("not a zip")
    with pytest.raises(UsageError, match="not a skops model file"):
        modelfile.load(tmp_path / "m.skops", trusted=[])


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    files.write_json(target, {"ok": 1})
    with pytest.raises(ValueError, match="Out of range float values"):
        files.write_json(target, {"bad": float("nan")})
    assert target.read_text() == '{\n  "ok": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_read_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(UsageError, match=r"x.json: plan is not valid JSON"):
        files.read_json(tmp_path / "x.json", "plan")
    with pytest.raises(UsageError, match=r"y.json: plan not found"):
        files.read_json(tmp_path / "y.json", "plan")


def test_file_md5_matches_hashlib(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert files.file_md5(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"
