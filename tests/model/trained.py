"""A throwaway project trained end to end by `dvc repro` on a small sample (once per session).

Integration tests of evaluate, gate and explain copy it, so each gets a real
pipeline state (dvc.lock, model, reports) without paying for a pipeline run.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project, edit_params

SAMPLE_ROWS = 2500
SAMPLE = "data/external/adult/sample.data"
_BUILT: dict[str, Path] = {}


def tool_env() -> dict[str, str]:
    """The environment for `dvc` and `mlops`: this interpreter's tools first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=project, env=tool_env(), capture_output=True, text=True, check=False
    )


def build(target: Path) -> Path:
    copy_project(target)
    # dvc.yaml lists the source modules as deps; the code that runs is the installed package.
    shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__"))
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
