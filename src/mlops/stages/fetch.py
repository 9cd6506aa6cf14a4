"""Command ``mlops fetch``: put the production model's bytes in the DVC cache.

What a serving host (or a container image built with the model baked in) does
before it serves: the version models/production.json names is fetched by its md5
from the DVC remote (credentials from the environment) and checked against that
md5, so a server starts on exactly the promoted bytes, without git history or a
``dvc pull`` of the whole pipeline. A remote that fails, or lacks the bytes, is
one line naming it; nothing else is written.
"""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.errors import UsageError
from mlops.io import dvc, files
from mlops.release.manifest import read_production

SUMMARY = "fetch the production model's bytes from the DVC remote into the DVC cache"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the manifest says which bytes, the DVC config where they are."""


def run(args: argparse.Namespace) -> None:
    manifest = read_production()
    if manifest is None:
        raise UsageError(f"{PATHS.production} not found: promote a model first (`mlops promote`)")
    md5 = manifest.model_md5
    cache_file = dvc.cache_file(md5)
    source = "already in the DVC cache"
    if not cache_file.is_file():
        missing = dvc.pull_object(md5)
        if missing is not None:
            raise UsageError(f"model {manifest.version} (md5 {md5}): {missing}")
        source = "fetched from the DVC remote"
    if files.file_md5(cache_file) != md5:
        raise UsageError(
            f"{cache_file}: bytes do not match md5 {md5} that {PATHS.production} records "
            f"for {manifest.version}; remove it and fetch again"
        )
    print(f"model {manifest.version} (md5 {md5}) {source}")
