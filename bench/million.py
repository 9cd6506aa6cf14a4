"""A million rows end to end: the whole `dvc repro` on 100,000 and 1,000,000 rows.

Usage, from the repository root (the machine is shared: run it niced):
    nice -n 10 .venv/bin/python bench/million.py [--sizes 100000 1000000] [--keep DIR]
        [--results DIR] [--train-max-rows N]

For each size, a data set of that many rows is drawn from the configured source
(params.yaml data.source, the demo's Adult data as shipped) by ``generate``: rows
resampled with replacement, numbers jittered, categories now and then swapped for
another value of the column, all seeded. A throwaway `git clone` of this repository's
HEAD gets params.yaml data.source pointed at it, then each DVC stage runs on its own
(`dvc repro -s <stage>`, in the order of dvc.yaml, which is the DAG's) in a process of
its own, under GNU time, so that the CPU time and peak memory reported are that
stage's: DVC's and the stage command's together, the larger of their maximum resident
sets. The stages run this checkout's installed ``mlops`` (.venv/bin first on PATH), so
uncommitted changes to src/ are what is measured.

Prints, per stage and in total, wall and CPU seconds and peak RSS for each size, the
ratios of the largest size to the smallest, and the load average (1 minute) before and
after each stage: other work on the machine shows up there, in the wall time far more
than in the CPU time.

With ``--train-max-rows N``, the largest size's clone then runs train and evaluate again
with params.yaml train.max_rows set to N (the model fitted on a sample, evaluated on the
whole test split), and prints their CPU time and peak memory and the test metrics beside
the run on every training row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mlops.data.ingestion import normalise_name
from mlops.io import files, tables

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIME = "/usr/bin/time"  # GNU time (the shell's builtin has no -f)
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
# Relative spread of the jitter on numbers, and the share of categories swapped.
JITTER = 0.05
SWAP = 0.02


def generate(source: pd.DataFrame, rows: int, seed: int, target: str) -> pd.DataFrame:
    """``rows`` rows like ``source``'s, with its columns and dtypes: rows drawn with
    replacement, each number scaled by a random factor around 1 (``JITTER``; zeros and
    signs are kept, whole numbers stay whole, the column's range is not left), and a
    ``SWAP`` share of each categorical column's values replaced by another row's value
    of that column. Missing values stay where the drawn rows had them; ``target`` (the
    label, by its normalised name) is never altered, so the data stays learnable."""
    rng = np.random.default_rng(seed)
    frame = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for name, column in frame.items():
        if normalise_name(name) == target:
            continue
        present = column.notna().to_numpy()
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype="float64")
            jittered = values * rng.normal(1.0, JITTER, rows)
            if pd.api.types.is_integer_dtype(column) or np.all(values[present] % 1 == 0):
                jittered = np.round(jittered)
            low, high = source[name].min(), source[name].max()
            jittered = np.where(present, np.clip(jittered, low, high), np.nan)
            frame[name] = pd.Series(jittered, index=frame.index).astype(column.dtype)
        else:
            swap = present & (rng.random(rows) < SWAP)
            donors = source[name].dropna().to_numpy()
            values = column.to_numpy(dtype=object, copy=True)
            values[swap] = donors[rng.integers(0, len(donors), int(swap.sum()))]
            frame[name] = pd.Series(values, index=frame.index, dtype=column.dtype)
    return frame


@dataclass(frozen=True)
class StageRun:
    stage: str
    seconds: float
    cpu_seconds: float
    peak_mb: float
    load_before: float
    load_after: float


def run_stage(project: Path, stage: str) -> StageRun:
    """``dvc repro -s stage`` in a child process: its wall time, and from GNU time its CPU
    time and peak resident set, each of it and its descendants (Linux folds a reaped
    child's usage into its parent's). GNU time, not ``os.wait4`` here: a child's
    ``ru_maxrss`` starts from the resident set of the process that forked it, and this
    one holds a million rows."""
    load_before = os.getloadavg()[0]
    peak_file = project / ".stage_usage"
    start = time.perf_counter()
    process = subprocess.run(
        [TIME, "-f", "%U %S %M", "-o", str(peak_file), "dvc", "repro", "--quiet", "-s", stage],
        cwd=project,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        output = process.stdout.decode()
        sys.exit(f"million.py: `dvc repro -s {stage}` exited {process.returncode}:\n{output}")
    user, system, peak_kb = peak_file.read_text().split()[-3:]  # after any warning of time's
    peak_file.unlink()
    cpu = float(user) + float(system)
    return StageRun(stage, seconds, cpu, int(peak_kb) / 1024, load_before, os.getloadavg()[0])


def pipeline(rows: int, base: Path, source: pd.DataFrame, seed: int) -> tuple[Path, list[StageRun]]:
    """The data set of ``rows`` rows in a fresh clone of HEAD, and each stage's run on it."""
    project = base / f"rows-{rows}"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True, env=ENV)
    params_path = project / "params.yaml"
    document = yaml.safe_load(params_path.read_text())
    data_file = project / "data" / "external" / f"generated-{rows}.parquet"
    generated = generate(source, rows, seed, normalise_name(document["data"]["target"]))
    generated.to_parquet(data_file, index=False)
    relative = str(data_file.relative_to(project))
    # format auto: the Parquet source, and evaluate.staleness.stream (a CSV) read as before
    document["data"] = {**document["data"], "source": relative, "format": "auto"}
    params_path.write_text(yaml.safe_dump(document, sort_keys=False))
    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    print(f"{rows:,} rows: {', '.join(stages)}", file=sys.stderr, flush=True)
    results = []
    for stage in stages:
        result = run_stage(project, stage)
        results.append(result)
        print(f"  {json.dumps(asdict(result))}", file=sys.stderr, flush=True)
    return project, results


def model_metrics(project: Path) -> dict[str, float]:
    """reports/metrics.json's scores of the model itself (not its baselines')."""
    metrics = json.loads((project / "reports/metrics.json").read_text())
    return {k: v for k, v in metrics.items() if not k.startswith("baseline")}


def sampled_training(project: Path, max_rows: int) -> str:
    """train and evaluate run again in ``project`` with train.max_rows = ``max_rows``,
    beside the run on every row: a table."""
    before = model_metrics(project)
    params_path = project / "params.yaml"
    document = yaml.safe_load(params_path.read_text())
    document["train"] = {**document.get("train", {}), "max_rows": max_rows}
    params_path.write_text(yaml.safe_dump(document, sort_keys=False))
    runs = {stage: run_stage(project, stage) for stage in ("train", "evaluate")}
    after = model_metrics(project)
    card = json.loads((project / "models/model_card.json").read_text())["training_data"]
    lines = [
        f"train.max_rows {max_rows:,}: fitted on {card['rows']:,} of "
        f"{card.get('sampled_from_rows', card['rows']):,} training rows",
        f"  {'stage':10} {'sample CPU s':>12} {'peak MB':>8} {'load':>9}",
    ]
    for stage, r in runs.items():
        load = f"{r.load_before:.1f}-{r.load_after:.1f}"
        lines.append(f"  {stage:10} {r.cpu_seconds:12.1f} {r.peak_mb:8.0f} {load:>9}")
    lines.append(f"  {'test metric':30} {'all rows':>9} {'sample':>9}")
    for name in sorted(before):
        lines.append(f"  {name:30} {before[name]:9.4f} {after.get(name, float('nan')):9.4f}")
    return "\n".join(lines)


def table(runs: dict[int, list[StageRun]]) -> str:
    """Per stage and in total: each size's wall and CPU seconds, peak RSS and load,
    then the largest size's CPU and wall time over the smallest's, next to their size ratio."""
    sizes = sorted(runs)
    small, large = runs[sizes[0]], runs[sizes[-1]]
    header = ["stage"]
    for size in sizes:
        header += [f"{size:,} wall s", "CPU s", "peak MB", "load"]
    header += ["CPU ratio", "wall ratio", "rows ratio"]
    lines = [header]
    for index, stage in enumerate(r.stage for r in small):
        row = [stage]
        for size in sizes:
            r = runs[size][index]
            row += [f"{r.seconds:.1f}", f"{r.cpu_seconds:.1f}", f"{r.peak_mb:.0f}"]
            row.append(f"{r.load_before:.1f}-{r.load_after:.1f}")
        cpu = large[index].cpu_seconds / small[index].cpu_seconds
        wall = large[index].seconds / small[index].seconds
        lines.append([*row, f"{cpu:.1f}x", f"{wall:.1f}x", f"{sizes[-1] / sizes[0]:.0f}x"])
    total = ["total"]
    for size in sizes:
        wall, cpu = (sum(getattr(r, k) for r in runs[size]) for k in ("seconds", "cpu_seconds"))
        total += [f"{wall:.1f}", f"{cpu:.1f}", f"{max(r.peak_mb for r in runs[size]):.0f}", ""]
    cpu = sum(r.cpu_seconds for r in large) / sum(r.cpu_seconds for r in small)
    wall = sum(r.seconds for r in large) / sum(r.seconds for r in small)
    lines.append([*total, f"{cpu:.1f}x", f"{wall:.1f}x", f"{sizes[-1] / sizes[0]:.0f}x"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    cells = (enumerate(zip(line, widths, strict=True)) for line in lines)
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in row) for row in cells
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="build the clones here and leave them")
    parser.add_argument(
        "--results",
        type=Path,
        help="also save each size's figures here as <rows>.json, and put every size saved "
        "there in the table (so sizes can run one at a time)",
    )
    parser.add_argument(
        "--train-max-rows",
        type=int,
        help="then train and evaluate the largest size again on a sample of this many rows",
    )
    args = parser.parse_args()
    params = files.load_params(ROOT / "params.yaml")
    config = params.data.model_copy(update={"source": str(ROOT / params.data.source)})
    source = tables.read_source(config)
    runs: dict[int, list[StageRun]] = {}
    sampled = None
    with tempfile.TemporaryDirectory(prefix="million-") as scratch:
        base = args.keep or Path(scratch)
        base.mkdir(parents=True, exist_ok=True)
        for size in sorted(args.sizes):
            project, runs[size] = pipeline(size, base, source, args.seed)
            if args.results:
                args.results.mkdir(parents=True, exist_ok=True)
                saved = json.dumps([asdict(r) for r in runs[size]], indent=1)
                (args.results / f"{size}.json").write_text(saved)
        if args.train_max_rows and args.sizes:
            sampled = sampled_training(project, args.train_max_rows)
    for path in sorted(args.results.glob("*.json")) if args.results else ():
        runs.setdefault(int(path.stem), [StageRun(**r) for r in json.loads(path.read_text())])
    print(f"{os.cpu_count()} CPUs; load average (1 minute) before-after each stage")
    print(table(runs))
    if sampled:
        print(sampled)


if __name__ == "__main__":
    main()
