"""Command ``mlops audit``: the ML Test Score of this repository -> reports/audit.{json,md}.

Scores the 28 tests of Breck et al. 2017 from what the repository holds and what
ran (dvc.yaml and dvc.lock, params.yaml, the pipeline's reports, the test suite's
files, the workflows, the monitor's committed verdict monitoring/latest.json and the
decisions log); see mlops.audit and docs/audit.md. It reads, it runs nothing:
seconds, not a retraining.

``--base FILE`` (an earlier audit.json, e.g. the pull request's base branch's) puts
what dropped at the top of audit.md. Exit 0 (the audit reports, it does not judge),
1 when ``--min-score`` is given and the final score is below it, 2 on bad input (an
unreadable params file, a corrupt report or base; one line, nothing written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.errors import CheckFailed
from mlops.io import files

SUMMARY = "ML Test Score self-audit of this repository -> reports/audit.json, audit.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report", type=Path, default=Path("reports/audit.json"), help="default: %(default)s"
    )
    parser.add_argument(
        "--markdown", type=Path, default=Path("reports/audit.md"), help="default: %(default)s"
    )
    parser.add_argument("--base", type=Path, help="an earlier audit.json to compare with")
    parser.add_argument(
        "--min-score", type=float, metavar="X", help="exit 1 when the final score is below X"
    )


def run(args: argparse.Namespace) -> None:
    from mlops.audit import report
    from mlops.audit.evidence import read_evidence

    base = None
    if args.base is not None:
        base = report.check_base(files.read_json(args.base, "base audit"), str(args.base))
    document = report.audit(read_evidence(Path.cwd(), args.params))
    files.write_json(args.report, document)
    files.write_text(args.markdown, report.markdown(document, base))
    sections = ", ".join(f"{key} {value:g}" for key, value in document["sections"].items())
    print(f"ML Test Score {document['score']:g} ({sections}) -> {args.report}, {args.markdown}")
    if base is not None and (fell := report.dropped(document, base)):
        print(f"lower than the base audit: {'; '.join(fell)}")
    if args.min_score is not None and document["score"] < args.min_score:
        raise CheckFailed(
            f"ML Test Score {document['score']:g} is below --min-score {args.min_score:g}"
        )
