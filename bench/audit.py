"""ML Test Score of the demo as cloned, and after one turn of its loop.

    .venv/bin/python bench/audit.py [--rows 500] [--runs 3]

On a `git clone` of this repository's committed HEAD (its .github, tests and params,
nothing from the working tree), in a temporary folder:

1. `dvc repro` (the DVC cache of this checkout is copied in first, so stages whose
   run is cached restore instead of rerunning);
2. `mlops audit`, timed over ``--runs`` runs: the template as a user clones it;
3. what CD and the serving host do: `mlops promote`, then `mlops predict` on
   ``--rows`` rows of the test split (the prediction log), synced to a local folder
   standing in for the log bucket;
4. what monitor.yml does: `.github/scripts/monitor.sh` against a local bare remote
   (`gh` stubbed: a decision other than "none" is printed, not acted on), which
   commits the verdict monitoring/latest.json;
5. `mlops audit` again, timed.

Prints each section's score before and after side by side, the audit's wall time,
and every test still below 1 with what it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECTIONS = ("data", "model", "infrastructure", "monitoring")
GH = '#!/bin/sh\necho "gh (stubbed) $*" >&2\n'


def sh(cwd: Path, *cmd: str, first: Path | None = None, **env: str) -> str:
    """``cmd`` in ``cwd`` with this venv's tools (and ``first``'s before them) on PATH;
    its output, or the bench stops with its error."""
    path = [*([str(first)] if first else []), str(BIN), os.environ["PATH"]]
    environment = {**os.environ, "PATH": os.pathsep.join(path), **env}
    proc = subprocess.run(
        cmd, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


def audit(project: Path, runs: int) -> tuple[dict[str, Any], float]:
    """reports/audit.json and the median wall seconds of ``runs`` `mlops audit` runs."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        sh(project, "mlops", "audit")
        seconds.append(time.perf_counter() - start)
    report = json.loads((project / "reports/audit.json").read_text())
    return report, statistics.median(seconds)


def clone(folder: Path) -> Path:
    project = folder / "demo"
    sh(folder, "git", "clone", "-q", str(ROOT), str(project))
    sh(project, "git", "config", "user.email", "bench@example.com")
    sh(project, "git", "config", "user.name", "bench")
    cache = ROOT / ".dvc/cache"
    if cache.is_dir():
        shutil.copytree(cache, project / ".dvc/cache", dirs_exist_ok=True)
    return project


def serve(project: Path, rows: int, bucket: Path) -> None:
    """``rows`` test-split rows answered by production; its log moved to ``bucket``."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    test = pd.read_parquet(project / "data/split/test.parquet")
    batch = project.parent / "batch.csv"
    test.drop(columns=[params["data"]["target"]]).head(rows).to_csv(batch, index=False)
    answers = project.parent / "answers.csv"
    sh(project, "mlops", "predict", "--input", str(batch), "--output", str(answers))
    logs = project / params["serve"]["log_dir"]
    bucket.mkdir()
    for log in logs.iterdir():
        shutil.move(log, bucket / log.name)


def monitor(project: Path, bucket: Path) -> str:
    folder = project.parent
    origin, fake = folder / "origin.git", folder / "bin"
    sh(folder, "git", "init", "-q", "--bare", str(origin))
    sh(project, "git", "remote", "add", "bench", str(origin))
    sh(project, "git", "push", "-q", "bench", "HEAD:main", "--tags")
    fake.mkdir()
    (fake / "gh").write_text(GH)
    (fake / "gh").chmod(0o755)
    out = sh(
        project,
        "bash",
        ".github/scripts/monitor.sh",
        "bench",
        "main",
        first=fake,
        PREDICTION_LOGS_URL=str(bucket),
        DVC_NO_ANALYTICS="1",
    )
    decisions = (project / "monitoring/decisions.jsonl").read_text().splitlines()
    decision = json.loads(decisions[-1])
    gh = [line for line in out.splitlines() if line.startswith("gh (stubbed)")]
    return f"{decision['action']} ({decision.get('done', '')})" + "".join(f"; {g}" for g in gh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="rows served before monitoring")
    parser.add_argument("--runs", type=int, default=3, help="timed audit runs per state")
    args = parser.parse_args()
    head = sh(ROOT, "git", "rev-parse", "--short", "HEAD").strip()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; HEAD {head}")
    with tempfile.TemporaryDirectory() as tmp:
        project = clone(Path(tmp))
        start = time.perf_counter()
        sh(project, "dvc", "repro", "-q")
        print(f"dvc repro on the clone: {time.perf_counter() - start:.0f} s")
        shipped, shipped_s = audit(project, args.runs)
        said = sh(project, "mlops", "promote").splitlines()
        print(f"mlops promote: {next(line for line in said if line.startswith('promoted'))}")
        bucket = Path(tmp) / "bucket"
        serve(project, args.rows, bucket)
        print(f"served {args.rows} rows; monitor.sh decision: {monitor(project, bucket)}")
        looped, looped_s = audit(project, args.runs)
    print(f"\n  {'section':16} {'as cloned':>10} {'after loop':>11}")
    for section in SECTIONS:
        before, after = shipped["sections"][section], looped["sections"][section]
        print(f"  {section:16} {before:10g} {after:11g}")
    print(f"  {'final (minimum)':16} {shipped['score']:10g} {looped['score']:11g}")
    print(
        f"  {'audit wall s':16} {shipped_s:10.2f} {looped_s:11.2f}   "
        f"(median of {args.runs}, interpreter start-up included)"
    )
    stale = looped.get("stale") or []
    print(f"\nstale evidence after the loop: {', '.join(stale) if stale else 'none'}")
    print("tests below 1 after the loop:")
    for test in looped["tests"]:
        if test["score"] < 1:
            print(f"  {test['id']:14} {test['score']:<4g} missing: {test['missing']}")


if __name__ == "__main__":
    main()
