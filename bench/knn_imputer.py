"""Benchmark ScalableKNNImputer against scikit-learn's KNNImputer, side by side.

Run: .venv/bin/python bench/knn_imputer.py [--rows-small 50000] [--rows-large 1000000]

Every measurement runs in a fresh subprocess that builds the data itself, so each
peak RSS is that run's own high-water mark (interpreter, libraries and data
included: an honest upper bound), and no run inherits another's heap. "traced MB"
is the tracemalloc peak during fit_transform alone (numpy and Python allocations;
the KD-trees' C++ buffers are not traced). "cpu s" is the process CPU time over
all threads and "load" the 1-minute load average after the run: on a shared
machine wall time depends on the neighbours, CPU time much less. Figures are
printed, never asserted.

Data: correlated numeric features from a rank-4 Gaussian plus noise, on
heterogeneous scales (three log-normal columns, the others affine with scales from
1 to 10^4), like real tabular data. Missing values:

* MCAR: column j is missing at random with a rate from 5 % to 20 % across columns;
* MNAR: the same rates, but self-masking: the larger a value, the likelier it is
  missing (logistic in the standardised value, slope 2);
* MCAR-20 (large run only, a stress case): every column 20 % missing at random.

Accuracy is the RMSE over the masked cells after dividing each column's error by
that column's standard deviation (so that no column dominates by its unit).
KNNImputer is run on the raw data (its default use) and on standardised data (the
like-for-like comparison, since ScalableKNNImputer standardises).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
from sklearn.impute import KNNImputer
from sklearn.preprocessing import StandardScaler

from mlops.features.knn import ScalableKNNImputer

N_FEATURES = 15
RANK = 4
MASKS_SMALL = ("MCAR", "MNAR")
MASKS_LARGE = ("MCAR", "MNAR", "MCAR-20")
METHODS_SMALL = ("KNNImputer raw", "KNNImputer standardised", "ScalableKNNImputer")


def make_data(rows: int, seed: int) -> np.ndarray:
    """Correlated features on realistic, heterogeneous scales."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(RANK, N_FEATURES))
    latent = rng.normal(size=(rows, RANK)) @ loadings
    data = latent + 0.5 * rng.normal(size=(rows, N_FEATURES))
    data /= data.std(axis=0)
    data[:, :3] = np.exp(0.6 * data[:, :3])
    scales = 10.0 ** rng.uniform(0, 4, N_FEATURES)
    offsets = rng.uniform(-1, 1, N_FEATURES) * scales
    data[:, 3:] = data[:, 3:] * scales[3:] + offsets[3:]
    return data


def make_mask(data: np.ndarray, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    rates = np.linspace(0.05, 0.20, data.shape[1])
    if kind == "MCAR-20":
        return rng.random(data.shape) < 0.20
    if kind == "MCAR":
        return rng.random(data.shape) < rates
    z = (data - data.mean(axis=0)) / data.std(axis=0)
    probs = np.column_stack([_self_masking(z[:, j], rates[j]) for j in range(data.shape[1])])
    return rng.random(data.shape) < probs


def _self_masking(z: np.ndarray, rate: float, slope: float = 2.0) -> np.ndarray:
    """Logistic in the value itself, intercept bisected so the mean rate is ``rate``."""
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = (low + high) / 2
        if (1 / (1 + np.exp(-(mid + slope * z)))).mean() > rate:
            high = mid
        else:
            low = mid
    return 1 / (1 + np.exp(-(low + slope * z)))


def make_imputer(method: str, settings: dict[str, Any]) -> Any:
    if method == "ScalableKNNImputer":
        return ScalableKNNImputer(**settings)
    if method == "KNNImputer raw":
        return KNNImputer(n_neighbors=5)
    return _Standardised()


class _Standardised:
    """KNNImputer on standardised columns, mapped back to the original units."""

    def fit_transform(self, data: np.ndarray) -> np.ndarray:
        scaler = StandardScaler().fit(data)
        filled = KNNImputer(n_neighbors=5).fit_transform(scaler.transform(data))
        return np.asarray(scaler.inverse_transform(filled))


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    """One measurement, inside its own process."""
    truth = make_data(job["rows"], job["seed"])
    mask = make_mask(truth, job["mask"], job["seed"])
    masked = np.where(mask, np.nan, truth)
    imputer = make_imputer(job["method"], job["settings"])
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    filled = imputer.fit_transform(masked)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors = ((filled - truth) / truth.std(axis=0))[mask]
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mb": peak / 1024,
        "traced_mb": traced / 2**20,
        "nrmse": float(np.sqrt(np.mean(errors**2))),
        "missing": float(mask.mean()),
        "left_nan": int(np.isnan(filled).sum()),
        "load": os.getloadavg()[0],
    }


def measure(job: dict[str, Any]) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {**job, **json.loads(child.stdout.strip().splitlines()[-1])}


def machine() -> str:
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"nproc={os.cpu_count()}  usable CPUs={len(os.sched_getaffinity(0))}  "
        f"CPU={models[0] if models else 'unknown'}  RAM={ram:.1f} GiB\n"
        f"python {platform.python_version()}  numpy {np.__version__}  scipy {scipy.__version__}  "
        f"scikit-learn {sklearn.__version__}  load average at start {os.getloadavg()[0]:.2f}"
    )


HEADER = (
    f"{'mask':<8}{'method':<32}{'missing':>8}{'wall s':>8}{'cpu s':>8}{'peak RSS MB':>12}"
    f"{'traced MB':>10}{'nRMSE':>8}{'speed-up wall/cpu':>19}{'nRMSE vs':>9}{'load':>6}"
)


def row(result: dict[str, Any], label: str, baseline: dict[str, Any] | None = None) -> str:
    """One result; against a baseline, also the speed-up and the relative nRMSE."""
    speed = accuracy = ""
    if baseline is not None:
        speed = f"{baseline['wall'] / result['wall']:.1f}x / {baseline['cpu'] / result['cpu']:.1f}x"
        accuracy = f"{100 * (result['nrmse'] / baseline['nrmse'] - 1):+.1f}%"
    return (
        f"{result['mask']:<8}{label:<32}{100 * result['missing']:>7.1f}%"
        f"{result['wall']:>8.1f}{result['cpu']:>8.1f}{result['peak_mb']:>12.0f}"
        f"{result['traced_mb']:>10.0f}{result['nrmse']:>8.4f}{speed:>19}{accuracy:>9}"
        f"{result['load']:>6.1f}"
        + (f"  !! {result['left_nan']} NaN left" if result["left_nan"] else "")
    )


def job(rows: int, seed: int, mask: str, method: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"rows": rows, "seed": seed, "mask": mask, "method": method, "settings": settings}


def small_table(rows: int, seed: int, settings: dict[str, Any]) -> None:
    print(f"\n## {rows:,} rows x {N_FEATURES} features: KNNImputer(n_neighbors=5) vs ours")
    print("speed-up and nRMSE of ScalableKNNImputer are relative to the KNNImputer run named")
    print(HEADER, flush=True)
    for mask in MASKS_SMALL:
        results = {m: measure(job(rows, seed, mask, m, settings)) for m in METHODS_SMALL}
        ours = results["ScalableKNNImputer"]
        for method in METHODS_SMALL[:2]:
            print(row(results[method], method))
        print(row(ours, "ScalableKNNImputer"))
        for method in METHODS_SMALL[:2]:
            print(row(ours, f"  vs {method}", results[method]), flush=True)


def large_table(rows: int, seed: int, settings: dict[str, Any]) -> None:
    print(f"\n## {rows:,} rows x {N_FEATURES} features: ScalableKNNImputer alone")
    print(HEADER, flush=True)
    for mask in MASKS_LARGE:
        for eps in (0.0, 1.0):
            tuned = {**settings, "eps": eps}
            result = measure(job(rows, seed, mask, "ScalableKNNImputer", tuned))
            print(row(result, f"ScalableKNNImputer eps={eps:g}"), flush=True)


def tradeoff_table(rows: int, seed: int, settings: dict[str, Any]) -> None:
    print(f"\n## max_donors / eps trade-off on {rows:,} rows")
    print(HEADER, flush=True)
    for mask in MASKS_SMALL:
        for donors in (5_000, 10_000, 20_000, 40_000):
            for eps in (0.0, 1.0):
                tuned = {**settings, "max_donors": donors, "eps": eps}
                result = measure(job(rows, seed, mask, "ScalableKNNImputer", tuned))
                print(row(result, f"max_donors={donors} eps={eps:g}"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows-small", type=int, default=50_000)
    parser.add_argument("--rows-large", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--n-jobs", type=int, default=-1, help="ScalableKNNImputer n_jobs (KD-tree query threads)"
    )
    parser.add_argument(
        "--sections", default="small,large,tradeoff", help="comma-separated tables to print"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    settings = {"n_jobs": args.n_jobs}
    print(machine())
    print("ScalableKNNImputer settings: defaults +", settings)
    sections = args.sections.split(",")
    if "small" in sections:
        small_table(args.rows_small, args.seed, settings)
    if "large" in sections:
        large_table(args.rows_large, args.seed, settings)
    if "tradeoff" in sections:
        tradeoff_table(args.rows_small, args.seed, settings)


if __name__ == "__main__":
    main()
