"""Stage ``ingest``: the configured source -> data/raw/dataset.parquet."""

from __future__ import annotations

import argparse

from mlops import io
from mlops.config import PATHS
from mlops.ingestion import ingest


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    raw = ingest(io.read_source(params.data), params.data)
    io.write_parquet(PATHS.raw, raw)
