"""The registered versions (GTO's git tags) and the all-or-nothing switch of
production that ``mlops promote`` and ``mlops rollback`` make. The decisions are in
``mlops.release.registry``, the manifest in ``mlops.release.manifest``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.config import PATHS
from mlops.io import files, git, gto
from mlops.release import registry
from mlops.release.registry import ARTIFACT, PROD, VersionRecord

_TAGS = (f"{ARTIFACT}@*", f"{ARTIFACT}#*")


def load_records() -> list[VersionRecord]:
    return [_record(v) for v in gto.versions(ARTIFACT)]


def _record(version: dict[str, Any]) -> VersionRecord:
    commit = version["commit"]
    model = registry.model_in_lock(_at(commit, PATHS.dvc_lock), PATHS.model.as_posix())
    gate = _at(commit, PATHS.gate)
    metrics, key_metrics = committed_metrics(commit)
    return VersionRecord(
        version=version["version"],
        commit=commit,
        active=version["active"],
        in_prod=PROD in version["stages"],
        gate_passed=registry.gate_verdict(gate),
        model_md5=model[1] if model else None,
        model_stage=model[0] if model else None,
        metrics=metrics,
        created_at=version["created_at"],
        key_metrics=key_metrics,
    )


def committed_metrics(commit: str) -> tuple[dict[str, float], tuple[str, ...]]:
    """The numbers of reports/metrics.json at ``commit``, and the names of the key ones
    (what the gate committed with them judged)."""
    metrics = registry.numeric_metrics(_at(commit, PATHS.metrics))
    return metrics, registry.key_metrics(_at(commit, PATHS.gate), metrics)


def _at(commit: str, path: Path) -> Any:
    """A JSON or YAML file as committed at ``commit``; None when absent or unreadable."""
    return files.parse_yaml_bytes(git.file_at(commit, path))


def wait_for_new_second() -> None:
    time.sleep(registry.seconds_to_wait(git.last_tag_time(_TAGS), time.time()))


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Undo every registry tag made and restore models/production.json if a step fails,
    so production is never left half-switched."""
    tags_before = git.tags(f"{ARTIFACT}[@#]*")
    manifest_before = files.read_bytes(PATHS.production) if PATHS.production.exists() else None
    try:
        yield
    except BaseException:
        git.delete_tags(sorted(git.tags(f"{ARTIFACT}[@#]*") - tags_before))
        if manifest_before is None:
            files.remove_files([PATHS.production])
        else:
            files.write_bytes(PATHS.production, manifest_before)
        git.unstage(PATHS.production)
        raise


def move_prod(records: list[VersionRecord], target: VersionRecord, reason: str) -> None:
    """Assign ``prod`` to ``target`` and take it from every other version, so exactly one
    version holds the stage whichever way GTO sorts (by time or by semver)."""
    if not target.in_prod:
        gto.assign(ARTIFACT, target.version, PROD, f"{reason}: {target.version} to {PROD}")
    for record in records:
        if record.in_prod and record.version != target.version:
            gto.unassign(ARTIFACT, record.version, PROD, f"{reason}: {record.version} leaves")
