"""Fixtures shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.trained import trained_copy


@pytest.fixture
def trained(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private copy of the session's `dvc repro`-trained project, as the working directory."""
    project = trained_copy(tmp_path_factory, tmp_path / "project")
    monkeypatch.chdir(project)
    return project
