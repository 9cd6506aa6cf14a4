"""The registered versions (GTO's git tags) and the all-or-nothing switch of
production that ``mlops promote``, ``mlops rollback`` and ``mlops respond`` make. The
decisions are in ``mlops.release.registry``, the manifest in ``mlops.release.manifest``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import PATHS
from mlops.errors import CheckFailed, UsageError
from mlops.io import dvc, files, git, gto, modelfile
from mlops.release import registry
from mlops.release.manifest import read_production, write_production
from mlops.release.registry import ARTIFACT, PROD, Manifest, VersionRecord

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


# --- rollback ---------------------------------------------------------------------


def rollback_choice(
    production: Manifest, to: str | None
) -> tuple[list[VersionRecord], VersionRecord]:
    """(every version, the one a rollback would put in prod)."""
    records = load_records()
    if not records:
        raise UsageError("no model versions in this clone's git tags: `git fetch --tags` first")
    return records, registry.rollback_target(records, production.version, to)


def roll_back(production: Manifest, to: str | None) -> list[str]:
    """Put ``to`` (None: the last functional version before production's) in prod, its
    bytes restored and loaded first; the lines to print. Changes nothing on failure."""
    records, target = rollback_choice(production, to)
    cache_file = dvc.cache_file(str(target.model_md5))
    source = restore(target, cache_file)
    check_loads(cache_file)
    switch(records, production, target)
    return [
        f"rolled back production from {production.version} to {target.version} "
        f"(md5 {target.model_md5}, from the {source}); {production.version} is deprecated",
        f"key metrics of {target.version}: {registry.describe_metrics(target)}",
    ]


def check_loads(cache_file: Path) -> None:
    """Load the model once: bytes this environment's libraries cannot load are no rollback."""
    # Imported here: scikit-learn's import is most of a rollback's time, and a dry run
    # or a refused rollback never needs it.
    from mlops.features.pipeline import TRUSTED_TYPES  # noqa: PLC0415

    modelfile.load_bytes(files.read_bytes(cache_file), TRUSTED_TYPES, str(cache_file))


def switch(records: list[VersionRecord], production: Manifest, target: VersionRecord) -> None:
    reason = f"Roll back {production.version} -> {target.version}"
    current = next((r for r in records if r.version == production.version), None)
    with all_or_nothing():
        wait_for_new_second()
        move_prod(records, target, reason)
        if current is not None and current.active:
            gto.deprecate(ARTIFACT, current.version, f"{reason}: {current.version} failed")
        manifest = registry.make_manifest(target, datetime.now(UTC), recorded_latency(target))
        write_production(manifest, reason)


def recorded_latency(target: VersionRecord) -> Mapping[str, float] | None:
    """The latency baseline measured when ``target`` was last promoted (the newest manifest
    commit naming it): a rollback restores it with the bytes instead of timing the model
    again in an emergency."""
    log = git.call(
        "log",
        "--format=%H",
        "--fixed-strings",
        f"--grep={target.version}",
        "--",
        PATHS.production.as_posix(),
    )
    for commit in log.split():
        document = _at(commit, PATHS.production)
        if isinstance(document, dict) and document.get("version") == target.version:
            latency = document.get("latency_ms")
            if isinstance(latency, dict):
                return latency
    return None


def restore(target: VersionRecord, cache_file: Path) -> str:
    """Make the DVC cache hold the target's exact bytes; where they came from. A remote
    that lacks them leaves the replay to try; one that fails (unreachable, credentials
    refused) raises from ``dvc.pull_object``, before anything changed."""
    md5 = str(target.model_md5)
    if _holds(cache_file, md5):
        return "DVC cache"
    remote = dvc.pull_object(md5)
    if remote is None and _holds(cache_file, md5):
        return "DVC remote"
    stage = str(target.model_stage)
    made, note = dvc.reproduce_output(target.commit, stage, PATHS.model, dvc.cache_dir())
    if made == md5 and _holds(cache_file, md5):
        return f"DVC cache after {note}"
    detail = note if made in (None, md5) else f"reproducing it gave md5 {made}"
    raise CheckFailed(
        f"cannot restore {target.version} (md5 {md5}): not in the DVC cache; remote: "
        f"{remote or 'fetched bytes do not match'}; {detail}; nothing changed"
    )


def _holds(cache_file: Path, md5: str) -> bool:
    if not cache_file.is_file():
        return False
    if files.file_md5(cache_file) != md5:
        raise CheckFailed(
            f"{cache_file}: the DVC cache copy does not match its md5 {md5} (corrupt); "
            "remove it and run again; nothing changed"
        )
    return True


def rollback_plan(production: Manifest, target: VersionRecord, cache_file: Path) -> str:
    where = (
        "its bytes are in the DVC cache"
        if cache_file.is_file()
        else "its bytes are not in the DVC cache: would fetch them from the DVC remote, "
        f"else reproduce commit {target.commit[:7]} (dvc repro {target.model_stage})"
    )
    return (
        f"dry run: would roll back production from {production.version} to {target.version} "
        f"(commit {target.commit[:7]}, md5 {target.model_md5}); {where}; "
        f"would deprecate {production.version}; nothing changed"
    )


# --- promotion ----------------------------------------------------------------------


def promote_head(
    version: str | None,
    bump: str,
    canary: Callable[[], str | None] = lambda: None,
    baseline: Callable[[], Mapping[str, float] | None] = lambda: None,
) -> list[str]:
    """Register HEAD's model (its gate passed) as a version and put it in prod; the lines
    to print. ``canary`` runs once the model is known to be the blessed one and before
    anything changes: it raises to refuse the promotion, or returns a note (or None).
    ``baseline`` gives the model's single-row latency for the manifest (None: unknown)."""
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
        return [f"{existing.version} (md5 {md5}) is already in production; nothing changed"]
    version = _version(records, existing, version, bump)
    if not dvc.cache_file(md5).is_file():
        raise UsageError(f"{PATHS.model} (md5 {md5}) is not in the DVC cache: run `dvc commit`")
    note = canary()
    latency = baseline()
    candidate = existing or _candidate(version, head, stage, md5)
    # Back the bytes up before they become a version, so any machine can restore them;
    # a remote that fails raises here, before any tag or manifest is written.
    remote = dvc.push_object(md5)
    commit = _promote(records, candidate, existing is not None, latency)
    lines = [
        f"promoted model {version} (commit {candidate.commit[:7]}, md5 {md5}) to prod; "
        f"{PATHS.production} committed as {commit[:7]}; publish with `git push --follow-tags`",
        f"key metrics: {registry.describe_metrics(candidate)}",
    ]
    if note:
        lines.insert(0, note)
    if remote is not None:
        lines.append(f"note: {remote}: the model's bytes are only in this DVC cache")
    return lines


def _promote(
    records: list[VersionRecord],
    candidate: VersionRecord,
    registered: bool,
    latency: Mapping[str, float] | None,
) -> str:
    """Tags, then the manifest, all or nothing; the manifest commit's id."""
    version = candidate.version
    manifest = registry.make_manifest(candidate, datetime.now(UTC), latency)
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
