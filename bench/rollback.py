"""Rollback benchmark: `mlops rollback` from the DVC cache, beside doing it by hand.

    python bench/rollback.py [--runs 3]

Builds a throwaway project with three promoted model versions (small data, one
tuning trial), then times, on fresh copies of it:

* ``mlops rollback``: choose the last functional version, verify its bytes in
  the DVC cache, load them once, move the GTO tags, rewrite and commit
  models/production.json (target: <= 5 s);
* by hand with DVC: ``git checkout model@v1.1.0 -- dvc.lock`` then
  ``dvc checkout models/model.skops`` (restores the bytes, moves no tag, keeps
  no record, checks no gate);
* ``mlops rollback --dry-run`` (the decision alone).

Each timing is a whole command, interpreter start-up included, as a user runs it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.registry_project import (  # noqa: E402
    SEEDS,
    make_template,
    promote,
    train_version,
    write_gate,
)

BIN = Path(sys.executable).parent


def timed(project: Path, *cmd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command: on a busy machine the CPU time is
    what the command costs, the wall time what it took while sharing the cores."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def plus(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], a[1] + b[1]


def build(folder: Path) -> Path:
    project = make_template(folder / "template")
    for seed in SEEDS:
        train_version(project, seed, gate_passed=True)
        promote(project)
    write_gate(project, passed=False)  # v1.2.0 fails after deployment
    subprocess.run(["git", "commit", "-qam", "v1.2.0 fails"], cwd=project, check=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        template = build(Path(tmp))
        times: dict[str, list[tuple[float, float]]] = {"rollback": [], "dry": [], "by hand": []}
        for run in range(args.runs):
            copy = shutil.copytree(template, Path(tmp) / f"run{run}", symlinks=True)
            times["dry"].append(timed(copy, "mlops", "rollback", "--dry-run"))
            times["rollback"].append(timed(copy, "mlops", "rollback"))
            by_hand = shutil.copytree(template, Path(tmp) / f"hand{run}", symlinks=True)
            times["by hand"].append(
                plus(
                    timed(by_hand, "git", "checkout", "model@v1.1.0", "--", "dvc.lock"),
                    timed(by_hand, "dvc", "checkout", "models/model.skops"),
                )
            )
    print(f"\nrollback v1.2.0 -> v1.1.0 from the DVC cache, median of {args.runs} runs")
    print(f"  {'command':55} {'wall s':>7} {'CPU s':>6}")
    labels = {
        "rollback": "mlops rollback (verify, load, tags, manifest)",
        "dry": "mlops rollback --dry-run",
        "by hand": "git checkout model@v1.1.0 -- dvc.lock && dvc checkout",
    }
    for key, label in labels.items():
        wall = statistics.median(t[0] for t in times[key])
        cpu = statistics.median(t[1] for t in times[key])
        print(f"  {label:55} {wall:7.2f} {cpu:6.2f}")


if __name__ == "__main__":
    main()
