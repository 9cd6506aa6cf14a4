"""Imputation benchmark: numeric gaps at random (MCAR) and not at random (MNAR).

Run from the repository root after `dvc repro split`:
    .venv/bin/python bench/imputation.py [--rows 10000] [--rate 0.3]

The demo data only lacks categories, so numeric values of the Adult training
split are masked, then filled by each strategy of the plan (as the saved
pipeline does) and, side by side, by what a user would otherwise write: a
plain scikit-learn SimpleImputer / KNNImputer on the numeric columns. For each
it prints the error on the masked values (RMSE in standard deviations), the
downstream test ROC AUC of the plan's whole pipeline (HistGradientBoosting on
all features; the test split masked alike), and the fit+transform time. A
synthetic set of correlated features shows where KNN earns its cost. Nothing
is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.metrics import roc_auc_score

from mlops.config import PATHS, ImputeConfig
from mlops.features.imputation import ImputationPlan, mask_values, plan_imputation, read_quality
from mlops.features.pipeline import build_imputer, build_pipeline
from mlops.io import files

TARGET = "income"
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CONFIG: dict[str, Any] = {
    "policy": "impute",
    "numeric": "median",
    "categorical": "most_frequent",
    "overrides": {},
    "indicators": False,
    "knn": {"n_neighbors": 5},
    "auto": {"family": "hist_gradient_boosting", "cv_folds": 3, "max_rows": 4000},
}


def plan_for(train: pd.DataFrame, strategy: str, indicators: bool = False) -> ImputationPlan:
    config = ImputeConfig.model_validate({**CONFIG, "numeric": strategy, "indicators": indicators})
    quality = read_quality({}, list(train.columns), TARGET)
    return plan_imputation(train, TARGET, quality, config, seed=0)


def rmse(filled: pd.DataFrame, masked: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Root mean squared error over all masked cells, each in its column's standard deviations."""
    errors = [
        ((filled[c] - truth[c]) / truth[c].std())[masked[c].isna()].to_numpy()
        for c in NUMERIC
        if c in filled
    ]
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ours(strategy: str, indicators: bool, data: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The plan's pipeline: imputers fitted on train, applied to test, HGB on top."""
    plan = plan_for(data["train"], strategy, indicators)
    names = plan.names()
    filled, seconds = timed(
        lambda: (
            build_imputer(plan).set_output(transform="pandas").fit_transform(data["train"][names])
        )
    )
    model = build_pipeline(plan, "hist_gradient_boosting", {}, 0, "binary")
    model.fit(data["train"][names], data["train"][TARGET])
    auc = roc_auc_score(data["test"][TARGET], model.predict_proba(data["test"][names])[:, 1])
    return {"rmse": rmse(filled, data["train"], data["truth"]), "auc": auc, "seconds": seconds}


def plain(imputer: Any, data: dict[str, pd.DataFrame]) -> dict[str, float]:
    """What a user would otherwise write: a scikit-learn imputer on the numeric columns.

    Only the fill is compared (no model), as the AUC column is about strategies.
    """
    train = data["train"][NUMERIC]
    filled, seconds = timed(lambda: imputer.set_output(transform="pandas").fit_transform(train))
    return {"rmse": rmse(filled, data["train"], data["truth"]), "auc": np.nan, "seconds": seconds}


def adult_case(rows: int, rate: float, mechanism: str) -> dict[str, pd.DataFrame]:
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    test = files.read_parquet(PATHS.test, "test split (run `dvc repro split`)")
    truth = train.sample(n=min(rows, len(train)), random_state=0).reset_index(drop=True)
    return {
        "truth": truth,
        "train": mask_values(truth, NUMERIC, rate, mechanism, 1),  # type: ignore[arg-type]
        "test": mask_values(test, NUMERIC, rate, mechanism, 2),  # type: ignore[arg-type]
    }


def run_adult(rows: int, rate: float) -> None:
    print(f"\nAdult, {rows} training rows, {rate:.0%} of each numeric feature masked")
    print(f"{'gaps':<5} {'imputer':<30} {'RMSE (sd)':>9} {'test AUC':>9} {'fit+transform s':>16}")
    for mechanism in ("mcar", "mnar"):
        data = adult_case(rows, rate, mechanism)
        results = {
            f"plan: {s}{' + indicators' if ind else ''}": ours(s, ind, data)
            for s in ("mean", "median", "knn")
            for ind in (False, True)
        }
        results["sklearn SimpleImputer(mean)"] = plain(SimpleImputer(), data)
        results["sklearn KNNImputer(5)"] = plain(KNNImputer(), data)
        for name, r in results.items():
            auc = "-" if np.isnan(r["auc"]) else f"{r['auc']:.4f}"
            figures = f"{r['rmse']:>9.3f} {auc:>9} {r['seconds']:>16.2f}"
            print(f"{mechanism:<5} {name:<30} {figures}")


def run_correlated(rows: int, rate: float) -> None:
    """Four noisy views of one latent value: neighbours carry the missing one."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=rows)
    truth = pd.DataFrame(
        {f"x{i}": latent * (i + 1) + rng.normal(scale=0.3, size=rows) for i in range(4)}
    ).assign(**{TARGET: (latent > 0).astype(int)})
    columns = [f"x{i}" for i in range(4)]
    masked = mask_values(truth, columns, rate, "mcar", 1)
    print(f"\nSynthetic correlated features, {rows} rows, {rate:.0%} masked at random")
    print(f"{'imputer':<30} {'RMSE (sd)':>9} {'fit+transform s':>16}")
    for name, make in (
        (
            "plan: mean",
            lambda: build_imputer(plan_for(masked, "mean")).set_output(transform="pandas"),
        ),
        (
            "plan: knn (ScalableKNN)",
            lambda: build_imputer(plan_for(masked, "knn")).set_output(transform="pandas"),
        ),
        ("sklearn KNNImputer(5)", lambda: KNNImputer().set_output(transform="pandas")),
    ):
        filled, seconds = timed(lambda make=make: make().fit_transform(masked[columns]))
        errors = [((filled[c] - truth[c]) / truth[c].std())[masked[c].isna()] for c in columns]
        print(f"{name:<30} {np.sqrt(np.mean(np.concatenate(errors) ** 2)):>9.3f} {seconds:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="training rows (default 10000)")
    parser.add_argument("--rate", type=float, default=0.3, help="share masked (default 0.3)")
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ", end="")
    print(f"OMP_NUM_THREADS={threads}")
    run_adult(args.rows, args.rate)
    run_correlated(args.rows, args.rate)


if __name__ == "__main__":
    main()
