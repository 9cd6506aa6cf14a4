"""Command ``mlops rollback``: put the last functional model version back in production.

Without ``--to`` it picks the newest version older than the one in production
whose gate passed and that is not deprecated. Its exact bytes are restored into
the DVC cache (already there; else fetched from the DVC remote; else remade by
``dvc repro`` of that version's commit in a temporary git worktree; a remote that
fails, rather than lacks them, stops the rollback with one line naming it), checked
against the md5 its dvc.lock records and loaded once as a model. Only then are
the GTO tags moved (prod to the target, the failed version deprecated) and
models/production.json rewritten and committed; a failure at any step undoes
them all, so production always names a model that is there and loads.
"""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.errors import UsageError
from mlops.io import dvc
from mlops.release.manifest import read_production
from mlops.release.production import roll_back, rollback_choice, rollback_plan

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
    if args.dry_run:
        _, target = rollback_choice(production, args.to)
        print(rollback_plan(production, target, dvc.cache_file(str(target.model_md5))))
        return
    print("\n".join(roll_back(production, args.to)))
