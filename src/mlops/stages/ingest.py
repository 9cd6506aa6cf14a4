"""Stage ``ingest``: the configured source, plus the Parquet files in params.yaml
``data.extra_data`` (labelled production rows), -> data/raw/dataset.parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.config import PATHS
from mlops.io import files, tables

SUMMARY = "read the source named in params.yaml into data/raw/dataset.parquet"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    source = tables.read_source(params.data)
    folder = Path(params.data.extra_data)
    extra = [
        (str(folder / name), files.read_parquet(folder / name, "extra data"))
        for name in files.list_names(folder)
        if name.endswith(".parquet")
    ]
    # Imported once params and inputs are checked (see mlops.cli).
    from mlops.data.ingestion import (
        append_extra,
        ingest,
        require_dropped,
        undropped,
        unlabelled,
    )

    require_dropped(source, params.data, params.data.source)
    # data.drop's columns go before the extra files are matched: labelled production rows
    # come from the prediction log, which never had them.
    source = undropped(source, params.data)
    extra = [(name, undropped(table, params.data)) for name, table in extra]
    rows = append_extra(source, extra)
    raw = ingest(rows, params.data)
    files.write_parquet(PATHS.raw, raw)
    left_out = unlabelled(rows, params.data)
    if left_out:
        print(
            f"mlops ingest: {len(raw)} rows; left out {left_out} without a "
            f"{params.data.target} value (params.yaml data.unlabelled: drop)"
        )
