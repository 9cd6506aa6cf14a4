"""Stage ``ingest``: the configured source -> data/raw/dataset.parquet."""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.io import files, tables

SUMMARY = "read the source named in params.yaml into data/raw/dataset.parquet"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    source = tables.read_source(params.data)
    # Imported once params and inputs are checked (see mlops.cli).
    from mlops.data.ingestion import ingest

    files.write_parquet(PATHS.raw, ingest(source, params.data))
