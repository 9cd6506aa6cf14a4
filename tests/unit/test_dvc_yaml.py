"""dvc.yaml reads as the architecture and can never let results go stale.

Each stage's deps must list exactly the project modules its entry point imports,
directly or not: a change to any of them reruns the stage, and a change to any
other module does not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "mlops" or n.startswith("mlops.")}


def _has_code(path: Path) -> bool:
    """Package __init__ files holding only a docstring cannot change a result."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def project_imports(*modules: str) -> set[str]:
    """Files (relative to the repo) of every project module reached from ``modules``."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for package in (".".join(parts[:i]) for i in range(1, len(parts))):
            todo.append(package)  # importing a.b.c runs a/__init__ and a/b/__init__
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imported_names(path))
    files = {p for p in seen if p.name != "__init__.py" or _has_code(p)}
    return {str(p.relative_to(ROOT)) for p in files}


def test_every_stage_runs_an_mlops_command() -> None:
    for name, stage in STAGES.items():
        assert stage["cmd"].split()[:2] == ["mlops", name], name


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_list_exactly_the_modules_it_imports(stage: str) -> None:
    expected = project_imports("mlops.cli", f"mlops.stages.{stage}")
    listed = {d for d in STAGES[stage]["deps"] if d.startswith("src/")}
    assert sorted(expected - listed) == [], f"{stage}: deps miss imported modules"
    assert sorted(listed - expected) == [], f"{stage}: deps list modules it never imports"


def test_the_import_walk_follows_indirect_imports() -> None:
    # train -> features.pipeline -> features.imputation: an indirect import must be found
    assert "src/mlops/features/imputation.py" in project_imports("mlops.features.pipeline")
    assert "src/mlops/errors.py" in project_imports("mlops.cli")


def _outputs() -> set[str]:
    produced: set[str] = set()
    for stage in STAGES.values():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                produced.update(out if isinstance(out, dict) else [out])
    return produced


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_exist(stage: str) -> None:
    """Deps no stage produces must be in the repository (a fresh clone has no outputs)."""
    produced = _outputs()
    for dep in STAGES[stage]["deps"]:
        if "${" not in dep and dep not in produced:
            assert (ROOT / dep).exists(), f"{stage}: missing dep {dep}"


def test_no_stage_imports_another_stage() -> None:
    """Stages are leaves: what two commands share lives in a package, not in a stage."""
    stages = SRC / "mlops/stages"
    for path in sorted(stages.glob("*.py")):
        imported = {n for n in _imported_names(path) if n.startswith("mlops.stages.")}
        assert imported == set(), f"{path.name} imports {sorted(imported)}"
