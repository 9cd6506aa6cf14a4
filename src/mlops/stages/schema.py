"""Command ``schema infer``: draft a data contract from a data file for a person to review.

``mlops schema infer --input FILE --out data/schema.yaml`` reads FILE (CSV, Parquet,
Feather or JSON, compressed or not; a CSV's separator and header sniffed, else as
params.yaml ``data`` describes) with names and types as the pipeline sees them, and
writes pandera's YAML: dtypes, nullability, observed ranges, the categories
seen, uniqueness of key-like columns. Observed ranges are only a
start: widen them to what the domain allows before committing. Columns that
identify rows (params.yaml ``validate.ids``, else detected) get a description
saying so and no range, and one line each on stdout: they stay in the data but
are never features.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from mlops.config import PATHS
from mlops.errors import CheckFailed, MlopsError
from mlops.io import files, tables

SUMMARY = "draft the data contract from a data file: mlops schema infer --input FILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["infer"], help="draft a contract from data")
    parser.add_argument("--input", type=Path, required=True, help="a CSV/Parquet file")
    parser.add_argument(
        "--out", type=Path, default=PATHS.schema, help="where (default: %(default)s)"
    )


_HEADER = """\
# The data contract, in pandera's YAML format: reviewed by a person, kept in git.
# Drafted by `mlops schema infer` from {source}.
# Ranges and categories are what that file held: review each one (widen ranges to
# what the domain allows) before committing. Names are snake_case, as after ingest.
"""


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    from mlops.data.ingestion import csv_layout, ingest, normalise_name
    from mlops.tasks.task import get_task

    source = tables.read_input(args.input, params.data, csv_layout(params.data))
    # Imported once params and the input are checked (see mlops.cli): pandera is slow.
    from mlops.data.contract import (
        contract_document,
        duplicate_columns,
        infer_contract,
        resolve_columns,
    )
    from mlops.data.identifiers import identify

    duplicates = duplicate_columns(list(source.columns))
    if duplicates:
        raise CheckFailed(f"{args.input}: duplicate column names: {', '.join(duplicates)}")
    try:
        frame = ingest(source, params.data, require_target=False)
    except MlopsError as exc:  # a bad target is a UsageError, bad names a CheckFailed
        raise type(exc)(f"{args.input}: {exc}") from None
    target = normalise_name(params.data.target)
    listed = params.validate_.ids
    if listed is not None:
        listed = tuple(resolve_columns(listed, set(frame.columns) - {target}, "validate.ids"))
    ids = identify(frame, target, listed)
    schema = infer_contract(
        frame, target, params.validate_.quality.max_categories, get_task(params.data.task), ids
    )
    text = yaml.safe_dump(contract_document(schema), sort_keys=False, allow_unicode=True)
    files.write_text(args.out, _HEADER.format(source=args.input) + text)
    for name, why in ids.items():
        print(f"{name}: identifies rows ({why}): drafted with no range, never a feature")
