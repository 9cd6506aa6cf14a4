"""GTO, the model registry on git tags: versions, registration, stage assignment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.errors import UsageError


def versions(artifact: str, root: Path = Path()) -> list[dict[str, Any]]:
    """Registered versions of ``artifact``: version, commit, active, stages (assigned now)."""
    from gto.registry import GitRegistry

    with _gto_errors(), GitRegistry.from_url(str(root)) as registry:
        state = registry.get_state()
    found = state.artifacts.get(artifact)
    if found is None:
        return []
    return [
        {
            "version": v.version,
            "commit": v.commit_hexsha,
            "active": bool(v.is_active),
            "stages": sorted(name for name, s in v.stages.items() if s.is_active),
            "created_at": v.created_at.isoformat(timespec="seconds"),
        }
        for v in found.versions
        if v.is_registered and not v.discovered
    ]


def register(artifact: str, version: str, revision: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.register(".", artifact, revision, version=version, message=message)


def assign(artifact: str, version: str, stage: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.assign(".", artifact, stage, version=version, message=message)


def unassign(artifact: str, version: str, stage: str, message: str) -> None:
    from gto import api

    with _gto_errors():
        api.unassign(".", artifact, version=version, stage=stage, message=message)


def deprecate(artifact: str, version: str, message: str) -> None:
    """``gto deprecate model vX.Y.Z``: deregister the version (tag ``model@vX.Y.Z!``)."""
    from gto import api

    with _gto_errors():
        api.deregister(".", artifact, version=version, message=message)


@contextlib.contextmanager
def _gto_errors() -> Iterator[None]:
    from gto.exceptions import GTOException

    try:
        yield
    except GTOException as exc:
        raise UsageError(f"gto: {str(exc).strip().splitlines()[0]}") from None
