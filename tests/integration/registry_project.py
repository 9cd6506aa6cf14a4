"""A throwaway project with three promoted model versions, for registry and serving tests.

Built once per test session (three small `dvc repro` runs on 2,500 rows of the
demo data, one Optuna trial, 2 CV folds), then copied whole (.git and the DVC
cache included) for each test that changes it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from mlops.io import files
from tests.conftest import ROOT, copy_project, edit_params

ROWS = 2500
# Each version runs with another seed (split, search, model), so each retrain
# gives a different model file: three versions, three different artefacts.
SEEDS = (1, 2, 3)
VERSIONS = ("v1.0.0", "v1.1.0", "v1.2.0")
_BUILT: dict[str, Path] = {}


def sh(project: Path, *cmd: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def make_template(target: Path) -> Path:
    """The project as a user clones it (package source, registry config), on little data."""
    copy_project(target)
    for name in ("artifacts.yaml", ".gto", ".gitignore"):
        shutil.copy2(ROOT / name, target / name)
    source = target / "data/external/adult/adult.data.gz"
    lines = gzip.decompress(source.read_bytes()).splitlines(keepends=True)[:ROWS]
    source.write_bytes(gzip.compress(b"".join(lines), mtime=0))
    importance = yaml.safe_load((target / "params.yaml").read_text())["validate"]["importance"]
    edit_params(
        target,
        tune={"n_trials": 1, "cv_folds": 2},
        validate={"importance": {**importance, "enabled": False}},
    )
    sh(target, "git", "add", "-A")
    sh(target, "git", "commit", "-q", "-m", "template")
    return target


def write_gate(project: Path, passed: bool) -> None:
    """A gate report shaped as gating writes it, bounding the project's target metric."""
    metric = yaml.safe_load((project / "params.yaml").read_text())["evaluate"]["metric"]
    check = {
        "name": f"minimum.{metric}",
        "kind": "minimum",
        "value": 0.9,
        "operator": ">=",
        "threshold": 0.8,
        "verdict": "pass",
        "note": "",
    }
    if not passed:
        check = {**check, "value": 0.7, "verdict": "fail"}
    report = {"passed": passed, "metric": metric, "checks": [check]}
    (project / "reports/gate.json").write_text(json.dumps(report))


def commit_all(project: Path, message: str) -> None:
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", message)


def train_version(project: Path, seed: int, gate_passed: bool) -> None:
    """Retrain with another seed, record a gate verdict, commit: a candidate model."""
    model = project / "models/model.skops"
    before = files.file_md5(model) if model.exists() else None
    params = project / "params.yaml"
    params.write_text(
        yaml.safe_dump({**yaml.safe_load(params.read_text()), "seed": seed}, sort_keys=False)
    )
    sh(project, "dvc", "repro", "-q", "evaluate")
    assert files.file_md5(model) != before, "the retrain gave the same model"
    write_gate(project, gate_passed)
    commit_all(project, f"retrain with seed {seed}")


def promote(project: Path) -> None:
    old = Path.cwd()
    os.chdir(project)
    try:
        assert main(["promote"]) == 0
    finally:
        os.chdir(old)


def three_versions(factory: pytest.TempPathFactory) -> Path:
    """v1.0.0, v1.1.0 and v1.2.0 promoted in turn; v1.2.0 is in production."""
    if "three" not in _BUILT:
        project = make_template(factory.mktemp("three-versions"))
        for seed in SEEDS:
            train_version(project, seed, gate_passed=True)
            promote(project)
        _BUILT["three"] = project
    return _BUILT["three"]


def with_candidate(factory: pytest.TempPathFactory) -> Path:
    """The three versions plus a fourth model trained, gate passed, committed, not promoted."""
    if "candidate" not in _BUILT:
        project = clone(three_versions(factory), factory.mktemp("candidate") / "repo")
        train_version(project, 4, gate_passed=True)
        _BUILT["candidate"] = project
    return _BUILT["candidate"]


def clone(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def manifest(project: Path) -> dict[str, Any]:
    return json.loads((project / "models/production.json").read_text())


def cache_file(project: Path, md5: str) -> Path:
    return project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def version_md5(project: Path, version: str) -> str:
    """The model md5 that the version tag's dvc.lock records."""
    lock = yaml.safe_load(sh(project, "git", "show", f"model@{version}:dvc.lock"))
    return str(lock["stages"]["train"]["outs"][0]["md5"])


def state(project: Path) -> dict[str, Any]:
    """Everything a registry command may change: tags, commits, manifest, workspace model
    (None in a fresh clone, which has none)."""
    model = project / "models/model.skops"
    return {
        "tags": sh(project, "git", "tag", "--list").split(),
        "head": sh(project, "git", "rev-parse", "HEAD").strip(),
        "status": sh(project, "git", "status", "--porcelain"),
        "manifest": (project / "models/production.json").read_bytes(),
        "model": files.file_md5(model) if model.exists() else None,
    }


def prod_versions(project: Path) -> list[str]:
    """The versions GTO says hold the prod stage."""
    from gto import api

    found = api.find_versions_in_stage(str(project), "model", "prod", versions_per_stage=-1)
    found = found if isinstance(found, list) else [found] if found else []
    return sorted(v.version for v in found)
