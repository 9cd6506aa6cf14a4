"""`mlops predict --input` and `mlops validate --input` on every form of a batch
(tests.input_files: CSV with and without a header row, Parquet, Feather, JSON, each
compressed or not), with and without the target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlops.cli import main
from mlops.config import DataConfig
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile
from tests.input_files import ROWS, VARIANTS, Variant, expected, write_variant
from tests.integration.registry_project import cache_file, clone, manifest, three_versions
from tests.model.trained import trained_copy


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a model in production; predict only adds logs to it."""
    return clone(three_versions(tmp_path_factory), tmp_path_factory.mktemp("inputs") / "repo")


@pytest.fixture
def repo(released: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(released)
    yield released
    shutil.rmtree(released / "logs", ignore_errors=True)


@pytest.fixture
def data(root: Path) -> DataConfig:
    return files.load_params(root / "params.yaml").data


Batch = Callable[[Variant], tuple[Path, pd.DataFrame]]


@pytest.fixture
def batch_of(root: Path, data: DataConfig, tmp_path: Path) -> Batch:
    """The batch file in the form a variant names, and what ingest should make of it."""

    def make(variant: Variant) -> tuple[Path, pd.DataFrame]:
        path = write_variant(variant, tmp_path / "in", root, data)
        return path, expected(variant, tmp_path, root, data)

    return make


@pytest.fixture
def light(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What validation reads (params.yaml, the contract), as the working directory."""
    (tmp_path / "data").mkdir()
    shutil.copy2(root / "params.yaml", tmp_path / "params.yaml")
    shutil.copy2(root / "data/schema.yaml", tmp_path / "data/schema.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _probabilities(repo: Path, features: pd.DataFrame) -> list[float]:
    data = cache_file(repo, manifest(repo)["model_md5"]).read_bytes()
    model = modelfile.load_bytes(data, TRUSTED_TYPES, "test")
    return list(model.predict_proba(features)[:, 1])


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_predict_scores_every_form_of_a_batch(
    variant: Variant,
    repo: Path,
    batch_of: Batch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch, want = batch_of(variant)
    output = tmp_path / "predictions.csv"
    code = main(["predict", "--input", str(batch), "--output", str(output)])
    assert (code, capsys.readouterr().err) == (0, "")
    table = pd.read_csv(output)
    assert len(table) == ROWS
    assert table["probability"].tolist() == pytest.approx(
        _probabilities(repo, want.drop(columns=["income"], errors="ignore")), rel=1e-5
    )
    labels = [c for c in table.columns if c.lower() == "income"]  # a header's own case
    assert bool(labels) is variant.labelled
    if variant.labelled:  # echoed as the file holds them (adult.test's "<=50K."), not encoded
        assert set(table[labels[0]]) <= {"<=50K.", ">50K."}
        assert (table[labels[0]] == ">50K.").tolist() == (want["income"] == 1).tolist()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_validate_checks_every_form_of_a_batch(
    variant: Variant,
    light: Path,
    batch_of: Batch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch, want = batch_of(variant)
    report = tmp_path / "batch.json"
    code = main(["validate", "--input", str(batch), "--report", str(report)])
    assert (code, capsys.readouterr().err) == (0, "")
    result = json.loads(report.read_text())
    assert (result["passed"], result["rows"]) == (True, ROWS)
    assert result["columns"] == len(want.columns) == 15 - (not variant.labelled)


def _directory_refused(capsys: pytest.CaptureFixture[str], command: str, args: list[str]) -> None:
    assert main([*args]) == 2
    assert capsys.readouterr().err == (
        f"mlops {command}: error: folder: input file is a directory; expected a file\n"
    )


@pytest.mark.parametrize(
    "args",
    [["validate", "--input", "folder"], ["schema", "infer", "--input", "folder"]],
    ids=["validate", "schema"],
)
def test_a_directory_as_input_is_one_line(
    args: list[str], light: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("folder").mkdir()
    _directory_refused(capsys, args[0], args)


def test_a_directory_to_predict_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (repo / "folder").mkdir()
    try:
        _directory_refused(capsys, "predict", ["predict", "--input", "folder", "--output", "p.csv"])
    finally:
        (repo / "folder").rmdir()
    assert not Path("p.csv").exists()


def test_schema_infer_reads_a_headed_batch_without_labels(light: Path, batch_of: Batch) -> None:
    batch, want = batch_of(Variant("csv.gz", False, True))
    assert main(["schema", "infer", "--input", str(batch), "--out", "draft.yaml"]) == 0
    assert list(files.read_yaml(Path("draft.yaml"))["columns"]) == list(want.columns)


def test_explain_reads_a_batch_in_any_form(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    batch_of: Batch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(trained_copy(tmp_path_factory, tmp_path / "project"))
    results = []
    for variant in (Variant("csv", True, False), Variant("csv.gz", False, True)):
        batch, _ = batch_of(variant)
        assert main(["explain", "--input", str(batch), "--row", "3", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["value"] == results[1]["value"]
    assert results[0]["steps"]["raw"] == results[1]["steps"]["raw"]
    assert (results[0]["actual"], results[1]["actual"]) == (1, None)  # row 3: ">50K."
