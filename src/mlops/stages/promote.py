"""Command ``mlops promote``: register the current model as a version and put it in prod.

Only a model whose gate passed is promoted. The version tag (GTO, ``model@vX.Y.Z``)
points at HEAD, the commit whose dvc.lock records the model, so the committed
model, its gate verdict and its metrics are what the version is. Promotion then
writes models/production.json and commits that file alone on top (the tags stay
local until pushed: ``git push --follow-tags``, or ``git push origin --tags``).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mlops.config import PATHS
from mlops.errors import CheckFailed, UsageError
from mlops.io import dvc, files, git, gto
from mlops.release import registry
from mlops.release.manifest import read_production, write_production
from mlops.release.production import (
    all_or_nothing,
    committed_metrics,
    load_records,
    move_prod,
    wait_for_new_second,
)
from mlops.release.registry import ARTIFACT, VersionRecord

SUMMARY = "register the committed model as a new version and put it in prod (gate passed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", help="the new version, e.g. v2.0.0 (default: bump)")
    parser.add_argument(
        "--bump",
        choices=("major", "minor", "patch"),
        default="minor",
        help="which part of the highest version to bump (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> None:
    _require_passed_gate()
    production = read_production()
    head = git.head()
    stage, md5 = _committed_model(head)
    judged = registry.judged_model(files.read_json(PATHS.gate, "gate report"))
    if judged not in (None, md5):
        raise UsageError(f"{PATHS.gate} judged another model ({judged}): run `dvc repro`")
    records = load_records()
    # HEAD may be the manifest commit on top of a registered model: match by bytes too.
    existing = registry.at_commit(records, head) or registry.with_model(records, md5)
    if existing and existing.in_prod and production and production.version == existing.version:
        print(f"{existing.version} (md5 {md5}) is already in production; nothing changed")
        return
    version = _version(records, existing, args.version, args.bump)
    if not dvc.cache_file(md5).is_file():
        raise UsageError(f"{PATHS.model} (md5 {md5}) is not in the DVC cache: run `dvc commit`")
    candidate = existing or _candidate(version, head, stage, md5)
    # Back the bytes up before they become a version, so any machine can restore them.
    remote = dvc.push_object(md5)
    commit = _promote(records, candidate, registered=existing is not None)
    print(
        f"promoted model {version} (commit {candidate.commit[:7]}, md5 {md5}) to prod; "
        f"{PATHS.production} committed as {commit[:7]}; publish with `git push --follow-tags`"
    )
    print(f"key metrics: {registry.describe_metrics(candidate)}")
    if remote is not None:
        print(f"note: {remote}: the model's bytes are only in this DVC cache")


def _promote(records: list[VersionRecord], candidate: VersionRecord, registered: bool) -> str:
    """Tags, then the manifest, all or nothing; the manifest commit's id."""
    version = candidate.version
    manifest = registry.make_manifest(candidate, datetime.now(UTC))
    with all_or_nothing():
        wait_for_new_second()
        if not registered:
            message = f"Register model {version} (gate passed)"
            gto.register(ARTIFACT, version, candidate.commit, message)
        move_prod(records, candidate, f"Promote {version}")
        return write_production(manifest, f"Promote model {version} to prod")


def _require_passed_gate() -> None:
    report = files.read_json(PATHS.gate, "gate report (run `dvc repro`)")
    verdict = registry.gate_verdict(report)
    if verdict is None:
        raise UsageError(f"{PATHS.gate}: gate report has no boolean 'passed'")
    if not verdict:
        failed = ", ".join(registry.failed_checks(report)) or "see the report"
        raise CheckFailed(f"{PATHS.gate}: the gate failed ({failed}); promotion refused")
    if not git.is_committed(PATHS.gate):
        raise UsageError(
            f"{PATHS.gate} has uncommitted changes: commit the pipeline's results first, "
            "so the version's commit records its verdict"
        )


def _committed_model(head: str) -> tuple[str, str]:
    """(stage, md5) of the model HEAD's dvc.lock records, which must be the file on disk."""
    lock = files.parse_yaml_bytes(git.file_at(head, PATHS.dvc_lock))
    found = registry.model_in_lock(lock, PATHS.model.as_posix())
    if found is None:
        raise UsageError(f"dvc.lock at HEAD records no {PATHS.model}: run `dvc repro`, commit")
    on_disk = files.file_md5(PATHS.model) if PATHS.model.is_file() else "missing"
    if on_disk != found[1]:
        raise UsageError(
            f"{PATHS.model} (md5 {on_disk}) is not the model dvc.lock at HEAD records "
            f"({found[1]}): run `dvc repro` and commit, or `dvc checkout`"
        )
    return found


def _version(
    records: list[VersionRecord], existing: VersionRecord | None, wanted: str | None, bump: str
) -> str:
    if existing is not None:
        if not existing.active:
            raise UsageError(
                f"this model is {existing.version}, which is deprecated; train a new model"
            )
        if wanted and wanted != existing.version:
            raise UsageError(f"this model is registered as {existing.version}, not {wanted}")
        return existing.version
    if wanted is None:
        return registry.next_version([r.version for r in records], bump)  # type: ignore[arg-type]
    registry.parse_version(wanted)
    if any(r.version == wanted for r in records):
        raise UsageError(f"version {wanted} is already registered")
    return wanted


def _candidate(version: str, head: str, stage: str, md5: str) -> VersionRecord:
    """HEAD's model as a new version: its gate passed, its metrics as HEAD records them."""
    metrics, key_metrics = committed_metrics(head)
    return VersionRecord(
        version,
        head,
        active=True,
        in_prod=False,
        gate_passed=True,
        model_md5=md5,
        model_stage=stage,
        metrics=metrics,
        key_metrics=key_metrics,
    )
