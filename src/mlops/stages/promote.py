"""Command ``mlops promote``: register the current model as a version and put it in prod.

Only a model whose gate passed is promoted, and only once the canary (the model
on production's recent logged inputs, ``mlops.release.canary``) passed. The
version tag (GTO, ``model@vX.Y.Z``) points at HEAD, the commit whose dvc.lock
records the model, so the committed model, its gate verdict and its metrics are
what the version is. Promotion then writes models/production.json and commits
that file alone on top (the tags stay local until pushed: ``git push
--follow-tags``, or ``git push origin --tags``).
"""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.errors import CheckFailed
from mlops.io import files
from mlops.release import canary
from mlops.release.production import promote_head

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
    params = files.load_params(args.params)

    def check() -> str:
        result = canary.run(params, PATHS.model)
        if result is None:
            return "canary skipped: no logged answers of the production model to compare with"
        if not result.passed:
            raise CheckFailed(f"{result.summary}; promotion refused, production unchanged")
        return result.summary

    def baseline() -> dict[str, float] | None:
        return canary.baseline_latency(params, PATHS.model)

    print("\n".join(promote_head(args.version, args.bump, check, baseline)))
