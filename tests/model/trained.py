"""A throwaway project trained end to end by `dvc repro` on a small sample (once per session).

Integration tests of evaluate, gate and explain copy it, so each gets a real
pipeline state (dvc.lock, model, reports) without paying for a pipeline run.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project, edit_params
from tests.conftest import run as conftest_run

SAMPLE_ROWS = 2500
SAMPLE = "data/external/adult/sample.data"
_BUILT: dict[str, Path] = {}


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """A tool of this venv (dvc, mlops) in ``project``; the exit code is the caller's to check."""
    return conftest_run(list(command), project, check=False)


def build(target: Path) -> Path:
    copy_project(target)
    lines = gzip.decompress((ROOT / "data/external/adult/adult.data.gz").read_bytes())
    (target / SAMPLE).write_bytes(b"\n".join(lines.splitlines()[:SAMPLE_ROWS]) + b"\n")
    edit_params(
        target,
        data={"source": SAMPLE},
        tune={"n_trials": 2, "cv_folds": 2},
        evaluate={"importance": {"repeats": 2, "max_rows": 500}},
    )
    result = run(target, "dvc", "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def trained_project(factory: pytest.TempPathFactory) -> Path:
    """The trained project, built by the first test that asks for it."""
    if "project" not in _BUILT:
        _BUILT["project"] = build(factory.mktemp("trained"))
    return _BUILT["project"]


def trained_copy(factory: pytest.TempPathFactory, target: Path) -> Path:
    """A private copy of the trained project at ``target``."""
    shutil.copytree(trained_project(factory), target, symlinks=True)
    return target
