"""Command ``mlops rollback``: put the last functional model version back in production.

Without ``--to`` it picks the newest version older than the one in production
whose gate passed and that is not deprecated. Its exact bytes are restored into
the DVC cache (already there; else fetched from the DVC remote; else remade by
``dvc repro`` of that version's commit in a temporary git worktree), checked
against the md5 its dvc.lock records and loaded once as a model. Only then are
the GTO tags moved (prod to the target, the failed version deprecated) and
models/production.json rewritten and committed; a failure at any step undoes
them all, so production always names a model that is there and loads.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from mlops.config import PATHS
from mlops.errors import CheckFailed, UsageError
from mlops.io import dvc, files, gto, modelfile
from mlops.release import registry
from mlops.release.manifest import read_production, write_production
from mlops.release.production import (
    all_or_nothing,
    load_records,
    move_prod,
    wait_for_new_second,
)
from mlops.release.registry import ARTIFACT, Manifest, VersionRecord

SUMMARY = "put the last functional model version back in production"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to", metavar="VERSION", help="this version instead of the last functional one"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would happen; change nothing"
    )


def run(args: argparse.Namespace) -> None:
    production = read_production()
    if production is None:
        raise UsageError(f"{PATHS.production} not found: no model is in production to roll back")
    records = load_records()
    if not records:
        raise UsageError("no model versions in this clone's git tags: `git fetch --tags` first")
    target = registry.rollback_target(records, production.version, args.to)
    cache_file = dvc.cache_file(str(target.model_md5))
    if args.dry_run:
        print(_plan(production, target, cache_file))
        return
    source = _restore(target, cache_file)
    _check_loads(cache_file)
    _switch(records, production, target)
    print(
        f"rolled back production from {production.version} to {target.version} "
        f"(md5 {target.model_md5}, from the {source}); {production.version} is deprecated"
    )
    print(f"key metrics of {target.version}: {registry.describe_metrics(target)}")


def _check_loads(cache_file: Path) -> None:
    """Load the model once: bytes this environment's libraries cannot load are no rollback."""
    # Imported here: scikit-learn's import is most of a rollback's time, and a dry run
    # or a refused rollback never needs it.
    from mlops.features.pipeline import TRUSTED_TYPES

    modelfile.load_bytes(files.read_bytes(cache_file), TRUSTED_TYPES, str(cache_file))


def _switch(records: list[VersionRecord], production: Manifest, target: VersionRecord) -> None:
    reason = f"Roll back {production.version} -> {target.version}"
    current = next((r for r in records if r.version == production.version), None)
    with all_or_nothing():
        wait_for_new_second()
        move_prod(records, target, reason)
        if current is not None and current.active:
            gto.deprecate(ARTIFACT, current.version, f"{reason}: {current.version} failed")
        write_production(registry.make_manifest(target, datetime.now(UTC)), reason)


def _restore(target: VersionRecord, cache_file: Path) -> str:
    """Make the DVC cache hold the target's exact bytes; where they came from."""
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


def _plan(production: Manifest, target: VersionRecord, cache_file: Path) -> str:
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
