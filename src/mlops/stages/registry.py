"""Command ``mlops registry``: model versions, their stage, gate verdict and key metrics.

Versions come from GTO's git tags, each version's gate verdict, metrics and model
hash from the files committed at its tag (``mlops.release.production``).
"""

from __future__ import annotations

import argparse
import json

from mlops.config import PATHS
from mlops.release import registry
from mlops.release.manifest import read_production
from mlops.release.production import load_records

SUMMARY = "list model versions: stage, gate verdict, key metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> None:
    production = read_production()
    records = load_records()
    rows = registry.listing(records, production)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no model versions registered yet (`mlops promote` registers one)")
        return
    print(registry.format_listing(rows))
    print(f"* = the version {PATHS.production} names (what serving loads)")
    warning = registry.disagreement(records, production)
    if warning:
        print(f"warning: {warning}")
