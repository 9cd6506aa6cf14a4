"""Command ``mlops drill``: a fire drill of monitoring and response (issue 14).

In a throwaway copy of the project (a ``git clone`` of HEAD sharing the DVC cache) the
model is built and promoted, then the held-out rows (the demo's adult.test, or
``--stream FILE``) are replayed as production batches through ``mlops predict`` (and a
sample through ``mlops serve``), with scenarios injected in order: clean batches,
covariate shift, a feature broken upstream (all null; units x1000), a bad model forced
into production, concept drift. After each batch ``mlops monitor --labels`` and
``mlops respond --labels`` run, and the decision is compared with the one the scenario
calls for. The timeline goes to reports/drill/ (timeline.json, .md, .png). Exit 0 when
every scenario got its response, 1 when one did not, 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.errors import CheckFailed, UsageError
from mlops.io import files

SUMMARY = "fire drill: replay held-out rows with injected failures through monitor and respond"
OUT_DIR = Path("reports/drill")
# (batch rows, clean batches, batches per scenario): quick for the test suite, full for the demo.
QUICK = (300, 2, 1)
FULL = (1000, 3, 2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the copy trains on 2,500 rows with one trial; few, small batches (for make test)",
    )
    parser.add_argument(
        "--stream", type=Path, help="rows to replay (default: the demo's adult.test)"
    )
    parser.add_argument("--batch-rows", type=int, metavar="N", help="rows per batch")
    parser.add_argument(
        "--scenarios",
        help="comma-separated, run in this order (default: every scenario)",
    )
    parser.add_argument(
        "--copy-params",
        type=Path,
        metavar="FILE",
        help="YAML of params.yaml sections merged into the copy's (drill another policy)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the copy in DIR/project (default: removed)",
    )
    # Not "out": the CLI checks an option of that name as a file to write.
    parser.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=OUT_DIR,
        metavar="DIR",
        help="timeline folder (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> None:
    rows, clean, per_scenario = QUICK if args.quick else FULL
    rows = args.batch_rows or rows
    if rows < 50:
        raise UsageError(f"--batch-rows {rows}: at least 50 rows, for the drift tests to judge")
    copy_params = files.read_yaml(args.copy_params, "--copy-params") if args.copy_params else {}
    if not isinstance(copy_params, dict):
        raise UsageError(f"{args.copy_params}: expected a mapping of params.yaml sections")
    # Imported once the arguments are checked (see mlops.cli): pandas, the pipeline.
    from mlops.drill.runner import Options, drill

    document = drill(
        Options(
            root=Path.cwd(),
            out=args.out_dir.resolve(),
            workdir=args.workdir.resolve() if args.workdir else None,
            stream=args.stream,
            quick=args.quick,
            batch_rows=rows,
            clean_batches=clean,
            per_scenario=per_scenario,
            scenarios=None
            if args.scenarios is None
            else tuple(s.strip() for s in args.scenarios.split(",") if s.strip()),
            served_rows=20,
            copy_params=copy_params,
        )
    )
    totals = document["rates"]
    where = args.out_dir / "timeline.md"
    line = (
        f"{totals['detected']} of {totals['scenarios']} scenarios answered, "
        f"{totals['false_alarms']} false alarm(s) in {totals['clean_batches']} clean batches, "
        f"{document['seconds']:.0f} s (see {where})"
    )
    if not totals["ok"]:
        wrong = [s["scenario"] for s in document["scenarios"] if not s["ok"]]
        raise CheckFailed(f"wrong response to {', '.join(wrong)}: {line}")
    print(f"mlops drill: passed: {line}")
