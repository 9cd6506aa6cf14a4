"""Shared fixtures: the repository, its params, and small slices of the demo data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# scikit-learn's estimator checks (tests/unit/test_knn.py) include "array API dispatch
# on NumPy input changes nothing", which only runs when SciPy's array API support is
# on; it must be set before SciPy is first imported, i.e. here.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pandas as pd
import pytest
import yaml

from mlops.config import Params
from mlops.data.ingestion import ingest
from mlops.io import files, tables

ROOT = Path(__file__).resolve().parents[1]
# What a copy of the project needs to run its pipeline. The stages run the installed
# package; src/ is copied because dvc.yaml lists its modules as stage deps.
PROJECT_FILES = (
    "params.yaml",
    "dvc.yaml",
    "data/schema.yaml",
    "data/external",
    "data/production",
    ".dvcignore",
    "src",
)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def params() -> Params:
    return files.load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def adult(params: Params) -> pd.DataFrame:
    """The whole ingested adult.data (32,561 rows)."""
    source = params.data.model_copy(update={"source": str(ROOT / params.data.source)})
    return ingest(tables.read_source(source), source)


@pytest.fixture(scope="session")
def adult_sample(adult: pd.DataFrame) -> pd.DataFrame:
    """3,000 rows, stratified, for tests that fit models."""
    return (
        adult.groupby("income", group_keys=False)
        .sample(frac=3000 / len(adult), random_state=0)
        .reset_index(drop=True)
    )


def copy_project(target: Path) -> Path:
    """A throwaway copy of the project with its own git and DVC repositories."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "test@example.com"],
        ["git", "config", "user.name", "test"],
    ):
        run(command, target)
    _dvc_init(target)
    return target


def _dvc_init(target: Path) -> None:
    # In-process: a `dvc init` subprocess costs seconds of start-up per test.
    from dvc.repo import Repo

    with Repo.init(target) as repo, repo.config.edit() as config:
        config["core"]["analytics"] = False


def tool_env() -> dict[str, str]:
    """The environment with this venv's tools (dvc, mlops) first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool of this venv in ``cwd``; output captured as text."""
    return subprocess.run(
        command, cwd=cwd, check=check, capture_output=True, text=True, env=tool_env()
    )


def edit_params(project: Path, **sections: dict[str, object]) -> None:
    """Update keys of params.yaml sections in a project copy (``tune={"n_trials": 2}``)."""
    path = project / "params.yaml"
    document = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        document[section] = {**document[section], **values} if values else values
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fast copy of the project (small tuning budget), as the working directory."""
    copy_project(tmp_path)
    edit_params(tmp_path, tune={"n_trials": 2, "cv_folds": 2})
    monkeypatch.chdir(tmp_path)
    return tmp_path
