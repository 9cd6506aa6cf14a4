"""Stage ``validate``: the data tests; a breach stops the pipeline.

``mlops validate`` checks the raw data set against data/schema.yaml (contract,
quality, personal data, lawful use), measures feature value on the training
split, and writes reports/validation.json and reports/validation.md.
``mlops validate --input FILE`` checks any file on demand (CSV, gzipped CSV or
Parquet, its separator and header sniffed; a serving batch: the target is
optional there) and writes reports only where --report and --markdown say.
A failed validation writes nothing unless --report is given (then the full
report, for CI or the monitor) and exits 1 with one line.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import PATHS, Params
from mlops.errors import CheckFailed, MlopsError
from mlops.io import files, tables

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

    from mlops.data.checks import Checked, Measured
    from mlops.data.leakage import Leakage


SUMMARY = (
    "data tests: the contract (data/schema.yaml), quality, personal data, feature "
    "value -> reports/validation.json, reports/validation.md"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", type=Path, help="validate this CSV/Parquet file on demand instead"
    )
    parser.add_argument(
        "--report", type=Path, help="write the JSON report here (even when it fails)"
    )
    parser.add_argument(
        "--markdown", type=Path, help="write the readable report here (even when it fails)"
    )


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    contract_document = files.read_yaml(PATHS.schema, "data contract")
    # Imported once params are checked (see mlops.cli): pandera is slow.
    from mlops.data import checks
    from mlops.data.contract import load_contract
    from mlops.data.ingestion import group_column, normalise_name, time_column

    contract = load_contract(contract_document, str(PATHS.schema))
    target = normalise_name(params.data.target)
    pipeline = args.input is None
    source: Path = PATHS.raw if pipeline else args.input
    frame = (
        files.read_parquet(PATHS.raw, "raw data set (run `dvc repro ingest`)")
        if pipeline
        else _read_batch(source, params, list(contract.columns))
    )
    if target not in frame.columns and not pipeline:
        contract = contract.remove_columns([target])  # a serving batch has no labels
    # Named as the contract names it: a batch (--input) lacking it is the contract's to report.
    groups = group_column(params, list(contract.columns))
    time = time_column(params, list(contract.columns))
    checked = checks.check(
        frame.reset_index(drop=True),
        contract,
        params.validate_,
        target=target,
        seed=params.seed,
        source=str(source),
        contract_path=str(PATHS.schema),
        require_target=pipeline,
        groups=groups,
        time=time,
    )
    leakage = measured = None
    if pipeline and checked.passed:
        train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
        parts = _held_out(train, checked, params)
        leakage = _leakage(parts, checked, params)
        measured = _measure(train, parts, checked, contract, params, leakage=leakage)
    report = checks.build(checked, params.validate_, measured, leakage)
    if report["passed"]:
        _write(report, args.report or (PATHS.validation if pipeline else None),
               args.markdown or (PATHS.validation_summary if pipeline else None))  # fmt: skip
        _record_latencies(report, checks.cost_latencies(measured))
        return
    # A failed validation leaves no report behind, unless one was asked for by name.
    _write(report, args.report, args.markdown)
    raise CheckFailed(checks.error_line(report))


def _read_batch(path: Path, params: Params, names: list[str]) -> pd.DataFrame:
    from mlops.data.contract import duplicate_columns
    from mlops.data.ingestion import csv_layout, ingest

    source = tables.read_input(path, params.data, csv_layout(params.data, names))
    duplicates = duplicate_columns(list(source.columns))
    if duplicates:
        raise CheckFailed(f"{path}: duplicate column names: {', '.join(duplicates)}")
    try:
        return ingest(source, params.data, require_target=False)
    except MlopsError as exc:  # a bad target is a UsageError, bad names a CheckFailed
        raise type(exc)(f"{path}: {exc}") from None


def _held_out(
    train: pd.DataFrame, checked: Checked, params: Params
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The rows the leakage and importance probes fit, and those they are scored on,
    drawn once for both (validate.importance's sample and hold-out); None when neither
    runs."""
    checks = params.validate_
    if not (checks.leakage.enabled or checks.importance.enabled):
        return None
    # Imported here: scikit-learn is only needed by the pipeline run, not by --input.
    from mlops.data import importance
    from mlops.tasks.task import get_task

    return importance.holdout(
        train, checked.target, checks.importance, seed=params.seed,
        task=get_task(params.data.task), groups=checked.groups, time=checked.time,
    )  # fmt: skip


def _leakage(
    parts: tuple[pd.DataFrame, pd.DataFrame] | None, checked: Checked, params: Params
) -> Leakage | None:
    """Each feature alone, out of fold over the rows feature value samples (fitted and
    held out): a suspected target leak."""
    config = params.validate_.leakage
    if not config.enabled or parts is None:
        return None
    import pandas as pd

    from mlops.data import leakage
    from mlops.tasks.task import get_task

    return leakage.measure(
        pd.concat(parts, ignore_index=True), checked.candidates, checked.target, config,
        task=get_task(params.data.task), seed=params.seed, groups=checked.groups,
    )  # fmt: skip


def _measure(
    train: pd.DataFrame,
    parts: tuple[pd.DataFrame, pd.DataFrame] | None,
    checked: Checked,
    contract: pa.DataFrameSchema,
    params: Params,
    *,
    leakage: Leakage | None,
) -> Measured | None:
    """Feature value (importance, redundancy) and, shown against it, cost on the training
    split, without the suspected leaks a policy drops or fails on (beside a leak every
    other feature looks worthless); switching value off switches cost off too."""
    value, spend = params.validate_.importance, params.validate_.cost
    if not value.enabled or parts is None:
        return None
    from mlops.data import cost, importance, redundancy
    from mlops.data.checks import Measured
    from mlops.data.contract import acquisition_cost
    from mlops.tasks.task import get_task

    leaks = leakage.excluded if leakage is not None else ()
    features = [name for name in checked.candidates if name not in leaks]
    target = checked.target
    seed, task = params.seed, get_task(params.data.task)
    importances, method = importance.measure_held_out(
        parts, features, target, value, seed=seed, task=task
    )
    sample = task.sample(train, target, value.max_rows, seed)
    measured = Measured(
        importances, method, redundancy.associations(sample, features), None, {}, {}
    )
    if spend.enabled:
        declared = {name: acquisition_cost(contract, name) for name in features}
        # Above max_features, the least valuable: those a policy would drop, whose cost
        # matters (in the contract's order, as every feature's would be).
        ranked = sorted(features, key=lambda f: (importances[f].mean, f))[: spend.max_features]
        footprint, costs = cost.measure(
            train,
            features,
            target,
            spend,
            declared,
            seed=seed,
            task_name=task.name,
            measured=[f for f in features if f in ranked],
        )
        how = {"model": "the importance probe", **spend.model_dump(exclude={"enabled"})}
        measured = replace(measured, footprint=footprint, costs=costs, cost_method=how)
    return measured


def _record_latencies(report: dict[str, Any], latencies: dict[str, Any] | None) -> None:
    """Measured latencies vary from run to run: into the run record, out of the tracked
    reports (a rerun must not change validation.json, which impute reads)."""
    if latencies is None:
        return
    from mlops.data import checks
    from mlops.io import runs

    runs.record_run("validate", {"cost_latency": latencies})
    files.write_text(PATHS.runs_dir / "validate.md", checks.cost_markdown(report, latencies))


def _write(report: dict[str, Any], json_path: Path | None, md_path: Path | None) -> None:
    from mlops.data import checks

    if json_path is not None:
        files.write_json(json_path, report)
    if md_path is not None:
        files.write_text(md_path, checks.markdown(report))
