"""The README stays true: its DAG, commands and make targets match the project."""

from __future__ import annotations

import re

from mlops.cli import command_names
from tests.conftest import ROOT, run

README = (ROOT / "README.md").read_text()


def test_the_dag_is_what_dvc_draws() -> None:
    drawn = run(["dvc", "dag", "--md"], ROOT).stdout.strip()
    assert drawn in README, "README's DAG is stale: paste `dvc dag --md` into it"


def test_every_mlops_command_in_the_readme_exists() -> None:
    named = set(re.findall(r"\bmlops ([a-z][a-z-]*)", README))
    assert named, "the README names no mlops command"
    assert sorted(named - set(command_names())) == []


def test_every_make_target_in_the_readme_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README))
    assert {"repro", "test"} <= named
    assert sorted(named - targets) == []
