"""Benchmark: the data tests on 1,000,000 rows x 15 columns, side by side with plain pandera.

    python bench/validation.py [--rows 1000000]

The demo data (adult.data, ingested) is resampled with replacement to
``--rows`` rows. Each measurement runs in a fresh process that reads the
table, warms up on a small slice (imports, lazy pandera backends), then
resets the peak-RSS counter (Linux /proc/self/clear_refs) and times one call:

- plain pandera: the same contract (data/schema.yaml), ``validate(lazy=True)``;
- mlops data tests: the contract plus implicit checks, per-feature quality,
  the personal-data scan and the report (what ``mlops validate`` does);
- feature value: the permutation importance step, on its capped sample;
- target leakage: each feature alone, fitted and scored on the same capped sample.

Two tables: clean data, and dirty data (value skew in three columns at 0.5 %,
so the failure paths run). Peak memory is the process's peak RSS above what
it held before the call, next to the DataFrame's own size (deep).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow

from mlops.data import checks, leakage
from mlops.data.contract import load_contract
from mlops.data.importance import holdout, measure
from mlops.data.ingestion import ingest
from mlops.io import files, tables
from mlops.tasks.task import get_task

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0
TARGET_MEMORY_RATIO = 3.0


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def _release_free_memory() -> None:
    """Hand freed heap back to the OS, so the peak counts what the call allocates
    rather than what it reuses from the table's reading."""
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc


def _measure(call: Any) -> dict[str, float]:
    _release_free_memory()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
    before = _status_mb("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _status_mb("VmHWM") - before}


def _worker(variant: str, data: Path) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    params = files.load_params(ROOT / "params.yaml")
    contract = load_contract(files.read_yaml(ROOT / "data/schema.yaml"), "data/schema.yaml")
    frame = pd.read_parquet(data)

    def pandera_only(table: pd.DataFrame) -> None:
        # The failure cases are built before the error is raised: that is the work measured.
        with contextlib.suppress(pandera.errors.SchemaErrors):
            contract.validate(table, lazy=True)

    def mlops_tests(table: pd.DataFrame) -> None:
        checked = checks.check(
            table,
            contract,
            params.validate_,
            target="income",
            seed=params.seed,
            source="bench",
            contract_path="data/schema.yaml",
            require_target=True,
        )
        report = checks.build(checked, params.validate_, None)
        checks.markdown(report)

    features = [c for c in frame.columns if c not in ("income", "race", "sex", "native_country")]

    def importance(table: pd.DataFrame) -> None:
        config = params.validate_.importance
        measure(table, features, "income", config, seed=params.seed, task_name=params.data.task)

    def leaks(table: pd.DataFrame) -> None:
        task = get_task(params.data.task)
        fit, held_out = holdout(
            table, "income", params.validate_.importance, seed=params.seed, task=task
        )
        leakage.measure(
            fit, held_out, features, "income", params.validate_.leakage,
            classification=task.is_classification, seed=params.seed,
        )  # fmt: skip

    run = {
        "pandera": pandera_only, "mlops": mlops_tests, "importance": importance, "leakage": leaks
    }[variant]  # fmt: skip
    run(frame.head(2000))  # warm-up: imports and lazily registered backends
    return _measure(lambda: run(frame))


def _resample(rows: int, seed: int) -> pd.DataFrame:
    params = files.load_params(ROOT / "params.yaml")
    source = params.data.model_copy(update={"source": str(ROOT / params.data.source)})
    adult = ingest(tables.read_source(source), source)
    return adult.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)


def _dirty(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Value skew at 0.5 % in three columns: unseen categories, out-of-range numbers."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), size=len(frame) // 200, replace=False)
    dirty = frame.copy()
    dirty.loc[rows, "native_country"] = "Atlantis"
    dirty.loc[rows, "age"] = 120.0
    dirty.loc[rows[: len(rows) // 2], "occupation"] = "Astronaut"
    return dirty


def _run_worker(variant: str, data: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", variant, "--data", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _table(title: str, frame_mb: float, results: dict[str, dict[str, float]]) -> None:
    labels = {
        "pandera": "plain pandera, same contract (lazy)",
        "mlops": "mlops data tests (contract+quality+privacy)",
        "importance": "  + feature value (permutation, capped sample)",
        "leakage": "  + target leakage (each feature alone)",
    }
    print(f"\n{title}")
    print(f"{'':48} {'wall (s)':>9} {'CPU (s)':>8} {'peak RSS (MB)':>14} {'x frame':>8}")
    for key, label in labels.items():
        r = results[key]
        print(
            f"{label:48} {r['seconds']:9.2f} {r['cpu']:8.2f} {r['peak_mb']:14.0f} "
            f"{r['peak_mb'] / frame_mb:8.2f}"
        )
    steps = ("mlops", "importance", "leakage")
    full = sum(results[step]["seconds"] for step in steps)
    peak = max(results[step]["peak_mb"] for step in steps)
    # CPU time: wall-clock ratios swing with the machine's load
    overhead = results["mlops"]["cpu"] / max(results["pandera"]["cpu"], 1e-9)
    cpu = sum(results[step]["cpu"] for step in steps)
    print(
        f"full validation: {full:.2f} s wall, {cpu:.2f} s CPU (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if full <= TARGET_SECONDS else 'MISSED'}), peak {peak / frame_mb:.2f}x frame "
        f"(target <= {TARGET_MEMORY_RATIO:.0f}x: "
        f"{'met' if peak / frame_mb <= TARGET_MEMORY_RATIO else 'MISSED'}); "
        f"data tests take {overhead:.1f}x plain pandera's CPU time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.data)))
        return
    frame = _resample(args.rows, args.seed)
    frame_mb = frame.memory_usage(deep=True).sum() / 2**20
    versions = ", ".join(
        f"{m} {__import__(m).__version__}" for m in ("pandas", "pandera", "sklearn")
    )
    print(
        f"{args.rows:,} rows x {frame.shape[1]} columns, DataFrame {frame_mb:.0f} MB (deep); "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}, {versions}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for title, table in (
            ("clean data", frame),
            ("dirty data (0.5% value skew)", _dirty(frame, args.seed)),
        ):
            path = Path(tmp) / "frame.parquet"
            table.to_parquet(path, index=False)
            variants = ("pandera", "mlops", "importance", "leakage")
            results = {v: _run_worker(v, path) for v in variants}
            _table(title, frame_mb, results)


if __name__ == "__main__":
    main()
