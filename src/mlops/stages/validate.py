"""Stage ``validate``: check data against data/schema.yaml; a breach stops the pipeline.

``mlops validate`` checks the raw data set and writes reports/validation.json;
``mlops validate --input FILE`` checks any file on demand (a serving batch,
say: the target is optional there) and writes a report only with --report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops import io
from mlops.config import PATHS
from mlops.errors import CheckFailed
from mlops.ingestion import ingest, normalise_name
from mlops.validation import load_contract, validate


def run(args: argparse.Namespace) -> None:
    params = io.load_params(args.params)
    contract = load_contract(io.read_yaml(PATHS.schema, "data contract"), str(PATHS.schema))
    target = normalise_name(params.data.target)
    report_path: Path | None = args.report
    if args.input is None:
        frame = io.read_parquet(PATHS.raw, "raw data set (run `dvc repro ingest`)")
        report_path = report_path or PATHS.validation
    else:
        frame = ingest(io.read_source(params.data, args.input), params.data, require_target=False)
        if target not in frame.columns:
            contract = contract.remove_columns([target])
    report = validate(frame, contract, target, params.validate_.extra_columns)
    if report_path is not None:
        io.write_json(report_path, report)
    if not report["passed"]:
        first = report["failures"][0]
        raise CheckFailed(
            f"{len(report['failures'])} contract failure(s); first: column {first['column']!r} "
            f"failed {first['check']} in {first['failing_rows']} row(s), e.g. {first['examples']}"
        )
