"""Pipeline benchmark: cold and no-op `dvc repro`, and each stage's start-up time.

Run from the repository root:
    .venv/bin/python bench/pipeline.py [--repeats 30] [--phase-repeats 10]

Prints measured figures; nothing is asserted. Everything runs in throwaway
copies of the project, side by side with a trivial one-stage DVC pipeline and
a chain of one-file stages; where each no-op spends its time is broken down by
DVC phase (bench/dvc_phases.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
COPY = ("params.yaml", "dvc.yaml", "data/schema.yaml", "data/external", ".dvcignore", "src")


def sh(command: Sequence[str], cwd: Path) -> float:
    """Wall time of one command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def init_repo(path: Path) -> None:
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        sh(command, path)
    sh(["dvc", "config", "core.analytics", "false"], path)


def project_copy(base: Path) -> Path:
    path = base / "project"
    for name in COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, path / name)
    init_repo(path)
    return path


def trivial_copy(base: Path) -> Path:
    path = base / "trivial"
    path.mkdir()
    init_repo(path)
    (path / "in.txt").write_text("x\n")
    (path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    sh(["dvc", "repro"], path)
    return path


def chain_copy(base: Path, stages: int) -> Path:
    """``stages`` one-file stages in a chain, like this pipeline's DAG with no work in it."""
    path = base / "chain"
    path.mkdir()
    init_repo(path)
    (path / "f0.txt").write_text("x\n")
    lines = ["stages:"]
    for i in range(1, stages + 1):
        lines.append(
            f"  s{i}:\n    cmd: cp f{i - 1}.txt f{i}.txt\n"
            f"    deps: [f{i - 1}.txt]\n    outs: [f{i}.txt]"
        )
    (path / "dvc.yaml").write_text("\n".join(lines) + "\n")
    sh(["dvc", "repro"], path)
    return path


def interleaved_medians(repeats: int, command: Sequence[str], *dirs: Path) -> list[float]:
    """Median wall time of ``command`` in each of ``dirs``: ``repeats`` rounds, each
    running all of them in a new (seeded) order, so neither a slow spell of the
    machine nor the position in a round favours one."""
    times: list[list[float]] = [[] for _ in dirs]
    rng = random.Random(0)
    for _ in range(repeats):
        for i in rng.sample(range(len(dirs)), len(dirs)):
            times[i].append(sh(command, dirs[i]))
    return [statistics.median(spent) for spent in times]


def phase_medians(repeats: int, *dirs: Path) -> list[dict[str, tuple[float, int]]]:
    """Per DVC phase, the median milliseconds (and calls) of a no-op `dvc repro` in each
    of ``dirs``, timed in-process by bench/dvc_phases.py; rounds as above."""
    script = str(Path(__file__).with_name("dvc_phases.py"))
    runs: list[list[dict[str, list[float]]]] = [[] for _ in dirs]
    rng = random.Random(1)
    for _ in range(repeats):
        for i in rng.sample(range(len(dirs)), len(dirs)):
            command = [sys.executable, script]
            out = subprocess.run(command, cwd=dirs[i], env=ENV, check=True, capture_output=True)
            runs[i].append(json.loads(out.stdout))
    return [{phase: median_phase(done, phase) for phase in done[0]} for done in runs]


def median_phase(runs: list[dict[str, list[float]]], phase: str) -> tuple[float, int]:
    return statistics.median(run[phase][0] for run in runs), int(runs[0][phase][1])


def print_phases(
    repeats: int, labels: Sequence[str], columns: list[dict[str, tuple[float, int]]]
) -> None:
    print(
        "\nwhere a no-op `dvc repro` spends its time (bench/dvc_phases.py, in-process, "
        f"median ms of {repeats} runs each; calls in brackets):"
    )
    print(f"  {'phase':38}" + "".join(f"{label:>18}" for label in labels))
    for phase in columns[0]:
        cells = "".join(f"{c[phase][0]:10.0f} ({c[phase][1]:>3})" for c in columns)
        print(f"  {phase:38}{cells}")


def startup(stage: str) -> float:
    """Interpreter start, imports and argument parsing of `mlops <stage>` (no work done)."""
    code = (
        f"import importlib, mlops.cli as c; a = c.build_parser({stage!r}).parse_args([{stage!r}]);"
        " importlib.import_module('mlops.stages.' + a.command)"
    )
    return sh([sys.executable, "-c", code], ROOT)


def heaviest_imports(stage: str, top: int = 3) -> str:
    code = f"import mlops.cli, mlops.stages.{stage}"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    ).stderr
    rows = re.findall(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)", out)
    # Top-level third-party packages: their cumulative time includes all they import.
    packages: dict[str, int] = {}
    for cum, name in rows:
        if "." not in name and not name.startswith("_") and name != "mlops":
            packages[name] = max(packages.get(name, 0), int(cum))
    ranked = sorted(((cum, name) for name, cum in packages.items()), reverse=True)[:top]
    return ", ".join(f"{name} {cum / 1e6:.2f}s" for cum, name in ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="no-op rounds")
    parser.add_argument("--phase-repeats", type=int, default=10, help="runs per phase breakdown")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    with tempfile.TemporaryDirectory() as tmp:
        project, trivial = project_copy(Path(tmp)), trivial_copy(Path(tmp))
        chain = chain_copy(Path(tmp), len(stages))
        cold = sh(["dvc", "repro"], project)
        noop, noop_trivial, noop_chain = interleaved_medians(
            args.repeats, ["dvc", "repro"], project, trivial, chain
        )
        phases = phase_medians(args.phase_repeats, trivial, chain, project)
    print(
        f"\ncold `dvc repro` (demo data, params.yaml as shipped): {cold:7.1f} s  (target <= 120 s)"
    )
    print(f"no-op `dvc repro`, {args.repeats} rounds in a shuffled order, medians:")
    print(f"  {f'this pipeline ({len(stages)} stages)':34}  {noop:6.2f} s")
    print(f"  {'one-stage pipeline':34}  {noop_trivial:6.2f} s")
    chain_label = f"{len(stages)} one-file stages in a chain"
    print(f"  {chain_label:34}  {noop_chain:6.2f} s  (DVC's own per-stage cost)")
    print(
        f"ratio: {noop / noop_trivial:.2f}x  (target <= 1.5x); "
        f"the chain alone is {noop_chain / noop_trivial:.2f}x"
    )
    labels = ("one-stage", f"{len(stages)}-stage chain", "this pipeline")
    print_phases(args.phase_repeats, labels, phases)
    print("\nstage start-up (import + parse arguments, median of 3; target <= 1 s):")
    print(f"  {'stage':10} {'seconds':>8}  heaviest imports (cumulative)")
    for stage in stages:
        seconds = statistics.median(startup(stage) for _ in range(3))
        print(f"  {stage:10} {seconds:8.2f}  {heaviest_imports(stage)}")
    # Not start-up any more, but still paid by each stage that fits or applies a model,
    # once its params and inputs are checked: pandas and sklearn.base (which imports
    # scipy.stats), nothing of ours.
    libraries = statistics.median(
        sh([sys.executable, "-c", "import pandas, sklearn.base"], ROOT) for _ in range(3)
    )
    print(
        f"  {'(work)':10} {libraries:8.2f}  python -c 'import pandas, sklearn.base', "
        "paid by split, impute, tune, train, evaluate after start-up"
    )


if __name__ == "__main__":
    main()
