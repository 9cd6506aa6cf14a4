"""Shared by the tuning benchmarks: the demo training data and the search space in params.yaml."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd

from mlops import io, tuning
from mlops.config import PATHS, Params
from mlops.imputation import ImputationPlan

ROOT = Path(__file__).resolve().parents[2]


def load(root: Path = ROOT) -> tuple[Params, pd.DataFrame, ImputationPlan]:
    """params.yaml, the training rows tune uses (its max_rows sample) and the imputation plan."""
    missing = [p for p in (PATHS.train, PATHS.imputation) if not (root / p).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(map(str, missing))}: run `dvc repro impute` first")
    params = io.load_params(root / "params.yaml")
    plan = ImputationPlan.from_dict(io.read_json(root / PATHS.imputation))
    train = io.read_parquet(root / PATHS.train)
    sample = tuning.sample_rows(train, plan.target, params.tune.max_rows, params.seed)
    return params, sample.reset_index(drop=True), plan


def single_core_fixed(params: Params) -> dict[str, dict[str, Any]]:
    """tune.fixed with every n_jobs set at 1, so each search uses one core, like the others."""
    return {
        family: {k: (1 if k == "n_jobs" and v is not None else v) for k, v in values.items()}
        for family, values in params.tune.fixed.items()
    }


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} at start"
    )
