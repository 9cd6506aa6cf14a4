"""models/production.json, the manifest of what production serves: read (by the gate
and serving) and written with its own commit (by promote and rollback)."""

from __future__ import annotations

from mlops.config import PATHS
from mlops.io import files, git
from mlops.release import registry
from mlops.release.registry import Manifest


def read_production() -> Manifest | None:
    """models/production.json, or None when nothing was promoted yet; corrupt -> UsageError."""
    if not PATHS.production.exists():
        return None
    document = files.read_json(PATHS.production, "production manifest")
    return registry.parse_manifest(document, str(PATHS.production))


def write_production(manifest: Manifest, message: str) -> str:
    """Write and commit models/production.json alone; the new commit's id."""
    files.write_json(PATHS.production, manifest.model_dump())
    return git.commit_file(PATHS.production, message)
