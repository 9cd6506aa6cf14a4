"""The ``mlops`` command: parse arguments, then run one stage module.

Stage modules are imported only once their command is chosen, so a stage
pays only for the libraries it uses (``mlops ingest`` never imports
scikit-learn or Optuna).

A stage module in turn imports at its top only what it needs to load params and
check its inputs (mlops.io, mlops.config, mlops.errors); the logic modules that
import scikit-learn, Optuna, SciPy or matplotlib (a second or more) are imported
inside ``run`` once params are valid and inputs are read. So a typo in
params.yaml, a bad argument or a missing input is reported in a fraction of a
second (issue #2; tests/unit/test_startup.py keeps it so).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops.config import PARAMS_FILE, PATHS
from mlops.errors import MlopsError, one_line
from mlops.io.files import check_output_path

COMMANDS = {
    "ingest": "read the source named in params.yaml into data/raw/dataset.parquet",
    "split": "stratified, seeded train/test split into data/split/",
    "validate": "data tests: the contract (data/schema.yaml), quality, personal data, "
    "feature value -> reports/validation.json, reports/validation.md",
    "impute": "decide and fit each feature's imputation -> models/imputation.json",
    "tune": "search hyperparameters with Optuna -> models/best_params.json",
    "train": "fit the model pipeline -> models/model.skops and models/model_card.json",
    "evaluate": "score the model on the test split -> reports/metrics.json, reports/plots/",
    "gate": "judge the model against thresholds and production -> reports/gate.json, gate.md",
    "explain": "trace one example through every step of the model pipeline",
    "schema": "draft the data contract from a data file: mlops schema infer --input FILE",
    "promote": "register the committed model as a new version and put it in prod (gate passed)",
    "rollback": "put the last functional model version back in production",
    "registry": "list model versions: stage, gate verdict, key metrics",
    "predict": "batch predictions by the production model",
    "serve": "HTTP endpoint for the production model (POST /predict, GET /health)",
    "recover": "repair what a killed `dvc repro` left (a cut dvc.lock); make repro runs it",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", type=Path, default=PARAMS_FILE, help="params file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        command = commands.add_parser(name, help=summary, description=summary)
        if name == "validate":
            command.add_argument(
                "--input", type=Path, help="validate this CSV/Parquet file on demand instead"
            )
            command.add_argument(
                "--report", type=Path, help="write the JSON report here (even when it fails)"
            )
            command.add_argument(
                "--markdown", type=Path, help="write the readable report here (even when it fails)"
            )
        if name == "impute":
            _impute_arguments(command)
        if name == "schema":
            command.add_argument("action", choices=["infer"], help="draft a contract from data")
            command.add_argument("--input", type=Path, required=True, help="a CSV/Parquet file")
            command.add_argument(
                "--out", type=Path, default=PATHS.schema, help="where (default: %(default)s)"
            )
        if name == "tune":
            command.add_argument(
                "--worker",
                action="store_true",
                help="join the study in tune.storage and run trials until it is done; "
                "write no outputs (start one per process or machine)",
            )
        if name == "gate":
            command.add_argument(
                "--check",
                action="store_true",
                help="exit 1 unless reports/gate.json passed for the current model (for CI)",
            )
        if name == "explain":
            _explain_arguments(command)
        _REGISTRY_ARGUMENTS.get(name, lambda _: None)(command)
    return parser


def _impute_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--input",
        type=Path,
        help="report which features the model imputes in this CSV/Parquet batch instead",
    )
    command.add_argument("--report", type=Path, help="write that report here as JSON")


def _explain_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--row", type=int, default=0, help="row number, from 0 (default: %(default)s)"
    )
    command.add_argument(
        "--input", type=Path, help="a CSV/Parquet file to explain (default: the test split)"
    )
    command.add_argument(
        "--top", type=int, default=5, help="how many moving features to show (default: 5)"
    )
    command.add_argument("--json", action="store_true", help="print JSON instead of text")


def _promote_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--version", help="the new version, e.g. v2.0.0 (default: bump)")
    command.add_argument(
        "--bump",
        choices=("major", "minor", "patch"),
        default="minor",
        help="which part of the highest version to bump (default: %(default)s)",
    )


def _rollback_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--to", metavar="VERSION", help="this version instead of the last functional one"
    )
    command.add_argument(
        "--dry-run", action="store_true", help="say what would happen; change nothing"
    )


def _registry_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _predict_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--input", type=Path, required=True, help="CSV or Parquet rows to score")
    command.add_argument(
        "--output", type=Path, required=True, help="predictions file (.parquet, else CSV)"
    )


def _serve_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", help="address to listen on (default: params serve.host)")
    command.add_argument("--port", type=int, help="port (default: params serve.port; 0: any)")


_REGISTRY_ARGUMENTS = {
    "promote": _promote_arguments,
    "rollback": _rollback_arguments,
    "registry": _registry_arguments,
    "predict": _predict_arguments,
    "serve": _serve_arguments,
}


# The options that name a file to write: each is checked before the stage starts, so
# a directory, a device or a symlink given for one is refused before anything is written.
OUTPUT_OPTIONS = ("output", "report", "markdown", "out")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        stage = importlib.import_module(f"mlops.stages.{args.command}")
        stage.run(args)
    except MlopsError as exc:
        # one_line: a safety net for a message quoting a huge value or spanning lines.
        print(f"mlops {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"mlops {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    for option in OUTPUT_OPTIONS:
        path = getattr(args, option, None)
        if isinstance(path, Path):
            check_output_path(path)


if __name__ == "__main__":
    sys.exit(main())
