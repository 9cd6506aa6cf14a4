"""Before and after: the demo pipeline of two (or more) git revisions, side by side.

Run from the repository root:
    .venv/bin/python bench/revisions.py [--rounds 2] REV [REV ...]   (default: main HEAD)

Each revision's tree (git archive) goes into its own throwaway repository and
runs a cold `dvc repro` with its own package first on PYTHONPATH, so the
installed environment serves every revision and only the code differs. Rounds
alternate the revisions (A B, B A, ...) so neither is favoured by a slow spell of
the machine. Prints the cold repro times and every number of reports/metrics.json
for each revision; nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def checkout(revision: str, target: Path) -> Path:
    """``revision``'s tree in a new git + DVC repository at ``target``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    # The revision's own outputs would make `dvc repro` a no-op: start cold.
    for lock in (target / "dvc.lock",):
        lock.unlink(missing_ok=True)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q", "-f"]):
        subprocess.run(command, cwd=target, env=env(target), check=True, capture_output=True)
    return target


def env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(project / "src"),
        "DVC_NO_ANALYTICS": "1",
    }


def cold_repro(project: Path) -> tuple[float, dict[str, float]]:
    """Seconds of a forced `dvc repro` in ``project`` (study dropped), and its metrics."""
    for study in (project / "reports/tuning").glob("study.db*"):
        study.unlink()
    start = time.perf_counter()
    done = subprocess.run(
        ["dvc", "repro", "-f"],
        check=False,
        cwd=project,
        env=env(project),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"dvc repro failed in {project}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, json.loads((project / "reports/metrics.json").read_text())


def revision_name(revision: str) -> str:
    described = subprocess.run(
        ["git", "rev-parse", "--short", revision],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return f"{revision} ({described.stdout.strip()})" if described.returncode == 0 else revision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", default=["main", "HEAD"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    times: dict[str, list[float]] = {r: [] for r in args.revisions}
    metrics: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {r: checkout(r, Path(tmp) / f"rev{i}") for i, r in enumerate(args.revisions)}
        for round_ in range(args.rounds):
            order = args.revisions if round_ % 2 == 0 else args.revisions[::-1]
            for revision in order:
                seconds, found = cold_repro(projects[revision])
                times[revision].append(seconds)
                if revision in metrics and metrics[revision] != found:
                    print(f"note: {revision}'s metrics changed between rounds")
                metrics[revision] = found
    names = [revision_name(r) for r in args.revisions]
    width = max(len(n) for n in names) + 2
    print(f"\ncold `dvc repro -f` (study dropped), {args.rounds} round(s), median seconds:")
    for revision, name in zip(args.revisions, names, strict=True):
        runs = ", ".join(f"{t:.1f}" for t in times[revision])
        print(f"  {name:<{width}} {statistics.median(times[revision]):7.1f}  ({runs})")
    keys = sorted(set().union(*(m.keys() for m in metrics.values())))
    print("\nreports/metrics.json:")
    print(f"  {'':<28}" + "".join(f"{r[:16]:>18}" for r in args.revisions))
    for key in keys:
        cells = "".join(
            f"{metrics[r][key]:>18.6g}" if key in metrics[r] else f"{'-':>18}"
            for r in args.revisions
        )
        print(f"  {key:<28}{cells}")


if __name__ == "__main__":
    main()
