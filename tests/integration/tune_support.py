"""Project copies ready for `mlops tune`: a small slice of the demo data, upstream stages run."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import yaml

from tests.conftest import copy_project, edit_params, run

SOURCE = Path("data/external/adult/adult.data.gz")
# Small and fast; every trial still fits real pipelines on real rows.
TUNE = {"n_trials": 3, "cv_folds": 2, "max_rows": None, "timeout": None}


def shrink_source(project: Path, rows: int) -> None:
    """Keep the first ``rows`` lines of the demo training source."""
    lines = gzip.decompress((project / SOURCE).read_bytes()).splitlines(keepends=True)
    (project / SOURCE).write_bytes(gzip.compress(b"".join(lines[:rows]), mtime=0))


def upstream_of_tune(project: Path) -> list[str]:
    """The stages producing the tune stage's inputs, read from dvc.yaml."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    inputs = set(stages["tune"]["deps"])
    return [
        name
        for name, stage in stages.items()
        if any(_path(out) in inputs for out in stage.get("outs", []))
    ]


def _path(out: str | dict[str, object]) -> str:
    return out if isinstance(out, str) else next(iter(out))


def prepared_project(target: Path, rows: int, **tune: object) -> Path:
    """A project copy whose stages before `tune` have run (via DVC, whatever they are)."""
    copy_project(target)
    shrink_source(target, rows)
    edit_params(target, tune={**TUNE, **tune})
    result = run(["dvc", "repro", *upstream_of_tune(target)], target, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def clone(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target
