"""Fixtures shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.registry_project import clone, three_versions, with_candidate
from tests.model.trained import trained_copy


@pytest.fixture
def trained(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private copy of the session's `dvc repro`-trained project, as the working directory."""
    project = trained_copy(tmp_path_factory, tmp_path / "project")
    monkeypatch.chdir(project)
    return project


# The three-version registry project (tests/integration/registry_project.py): built once
# per session, copied whole for each test that changes it.


@pytest.fixture(scope="session")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1.0.0, v1.1.0 and v1.2.0 promoted in turn (read-only: tests change copies)."""
    return three_versions(tmp_path_factory)


@pytest.fixture
def repo(released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of ``released``, as the working directory."""
    project = clone(released, tmp_path / "repo")
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def candidate(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy with a fourth model trained and committed (its gate passed), not promoted."""
    project = clone(with_candidate(tmp_path_factory), tmp_path / "repo")
    monkeypatch.chdir(project)
    return project
