"""The whole `dvc repro` in a throwaway copy of the project.

One module-scoped copy runs the pipeline once; the tests then probe
reproducibility and what reruns after a change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.io import files
from tests.conftest import copy_project, edit_params, run

pytestmark = pytest.mark.slow
STAGES = {"ingest", "split", "validate", "impute", "tune", "train", "evaluate", "profile", "gate"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("e2e"))
    edit_params(project, tune={"n_trials": 3, "cv_folds": 2})
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "template"], project)
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    return project


def _stale(project: Path) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    return set(status)


def test_repro_builds_every_artefact(repo: Path) -> None:
    for path in (
        "data/raw/dataset.parquet",
        "data/split/train.parquet",
        "reports/validation.json",
        "models/imputation.json",
        "models/best_params.json",
        "models/model.skops",
        "models/model_card.json",
        "reports/metrics.json",
        "reports/plots/roc.csv",
        "models/reference.json",
    ):
        assert (repo / path).is_file(), path
    card = json.loads((repo / "models/model_card.json").read_text())
    # Facts of the run live in its record, never in the card (a rerun changes no byte).
    assert not {"trained_at", "git_revision"} & set(card)
    record = json.loads((repo / "reports/runs/train.json").read_text())
    assert record["git_revision"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert record["model_md5"] == files.file_md5(repo / "models/model.skops")
    assert card["training_data"]["md5"] == files.file_md5(repo / "data/split/train.parquet")
    assert {"scikit-learn", "python"} <= set(card["libraries"])


def test_nothing_is_stale_after_repro(repo: Path) -> None:
    assert _stale(repo) == set()
    assert "Stage 'evaluate' didn't change, skipping" in run(["dvc", "repro"], repo).stdout


def test_forced_repro_is_byte_identical(repo: Path) -> None:
    files = (
        "models/model.skops",
        "reports/metrics.json",
        "models/best_params.json",
        "models/reference.json",
    )
    before = {f: (repo / f).read_bytes() for f in files}
    result = run(["dvc", "repro", "-f"], repo, check=False)
    assert result.returncode == 0, result.stderr
    for name in files:
        assert (repo / name).read_bytes() == before[name], f"{name} changed on a forced rerun"


@pytest.mark.parametrize(
    ("section", "change", "stale"),
    [
        ("evaluate", {"threshold": 0.4}, {"evaluate", "profile"}),
        ("impute", {"numeric": "mean"}, {"impute"}),
        ("tune", {"n_trials": 4}, {"tune"}),
        ("split", {"test_size": 0.25}, {"split"}),
    ],
)
def test_a_param_change_reruns_only_the_stages_that_read_it(
    repo: Path, section: str, change: dict[str, object], stale: set[str]
) -> None:
    original = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, **{section: change})
        assert _stale(repo) == stale
    finally:
        (repo / "params.yaml").write_text(original)


@pytest.mark.parametrize(
    ("module", "stale"),
    [
        ("evaluation/report.py", {"evaluate"}),
        ("features/pipeline.py", {"impute", "tune", "train", "evaluate"}),
        # evaluate reads the held-out stream (evaluate.staleness.stream) through ingestion;
        # tune names split.groups' column as ingestion names columns.
        ("data/ingestion.py", {"ingest", "split", "validate", "impute", "tune", "evaluate"}),
        ("io/studydb.py", {"tune"}),
        ("io/files.py", STAGES),
        # The GTO wrapper, another command's help or options: nothing reruns.
        ("io/gto.py", set()),
        ("stages/predict.py", set()),
        # A stage's own module (its help line, its options): that stage alone.
        ("stages/evaluate.py", {"evaluate"}),
    ],
)
def test_a_module_change_reruns_only_the_stages_that_import_it(
    repo: Path, module: str, stale: set[str]
) -> None:
    path = repo / "src/mlops" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# changed\n")
        assert _stale(repo) == stale
    finally:
        path.write_text(original)


def test_demo_model_quality(repo: Path) -> None:
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["roc_auc"] >= 0.92
    assert metrics["accuracy"] >= 0.86
