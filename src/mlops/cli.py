"""The ``mlops`` command: ``mlops [--params FILE] COMMAND [OPTIONS]``.

Each command is a module of ``mlops.stages`` that states its own help line
(``SUMMARY``), its options (``add_arguments``, when it has any) and ``run``.
This module only finds the command, parses its arguments and turns a user's
error into one line on stderr. So a command's help or options live with the
command: editing them changes that module alone, and `dvc repro` reruns no
other stage for it.

Only the chosen command's module is imported (all of them only for ``--help``
or an unknown command), and a stage module in turn imports at its top only
what it needs to load params and check its inputs (``mlops.io``,
``mlops.config``, ``mlops.errors``); the logic modules that import scikit-learn,
Optuna, SciPy or matplotlib (a second or more) are imported inside ``run`` once
params are valid and inputs are read. So a typo in params.yaml, a bad argument
or a missing input is reported in a fraction of a second (issue #2;
tests/unit/test_startup.py keeps it so).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import mlops.stages
from mlops.config import PARAMS_FILE
from mlops.errors import MlopsError, one_line
from mlops.io.files import check_output_path

# The options that name a file to write: each is checked before the stage starts, so
# a directory, a device or a symlink given for one is refused before anything is written.
OUTPUT_OPTIONS = ("output", "report", "markdown", "out")
# The pipeline's commands first, in the order `dvc repro` runs them; then the rest.
_PIPELINE = ("ingest", "split", "validate", "impute", "tune", "train", "evaluate", "gate")


def command_names() -> list[str]:
    """Every command: one per module of ``mlops.stages`` (found without importing them)."""
    found = {m.name for m in pkgutil.iter_modules(mlops.stages.__path__) if not m.ispkg}
    return [*(n for n in _PIPELINE if n in found), *sorted(found - set(_PIPELINE))]


def command(name: str) -> ModuleType:
    return importlib.import_module(f"mlops.stages.{name}")


def commands() -> dict[str, str]:
    """Each command's help line (imports every command module: for help and tests)."""
    return {name: str(command(name).SUMMARY) for name in command_names()}


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``chosen`` a known command, only that command's module is imported."""
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", type=Path, default=PARAMS_FILE, help="params file (default: %(default)s)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = command_names()
    for name in [chosen] if chosen in names else names:
        module = command(name)
        sub = subparsers.add_parser(name, help=module.SUMMARY, description=module.SUMMARY)
        if hasattr(module, "add_arguments"):
            module.add_arguments(sub)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first argument that is not ``--params``'s)."""
    rest = iter(argv)
    for argument in rest:
        if argument == "--params":
            next(rest, None)
        elif not argument.startswith("--params="):
            return None if argument.startswith("-") else argument
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_chosen(arguments)).parse_args(arguments)
    try:
        _check_outputs(args)
        command(args.command).run(args)
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
