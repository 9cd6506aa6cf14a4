"""Stage ``ingest``: the configured source -> data/raw/dataset.parquet."""

from __future__ import annotations

import argparse

from mlops import io
from mlops.config import PATHS


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    source = io.read_source(params.data)
    # Imported once params and inputs are checked (see mlops.cli).
    from mlops.ingestion import ingest

    io.write_parquet(PATHS.raw, ingest(source, params.data))
