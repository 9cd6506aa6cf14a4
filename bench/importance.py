"""Permutation importance in the evaluate stage versus scikit-learn's, side by side.

Run after `make repro` (it reads the pipeline's model and test split):

    OMP_NUM_THREADS=1 python bench/importance.py [--rows 2000] [--repeats 5]

Both shuffle each raw feature `repeats` times on the same rows and score ROC
AUC. scikit-learn's permutation_importance runs the whole pipeline (all
per-feature imputers and encoders) for every shuffle; mlops encodes once and
shuffles each feature's encoded columns, which is equivalent because every
transform is row-wise. Printed: wall and CPU time of each, and how far their
importances differ (they use different random shuffles, so not bit-equal).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import stats
from sklearn.inspection import permutation_importance

from mlops import io
from mlops.config import PATHS
from mlops.evaluation import importances
from mlops.imputation import ImputationPlan
from mlops.modeling import TRUSTED_TYPES

T = TypeVar("T")


def timed(function: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    params = io.load_params(Path("params.yaml"))
    config = params.evaluate.model_copy(
        update={
            "metric": "roc_auc",
            "importance": params.evaluate.importance.model_copy(
                update={"repeats": args.repeats, "max_rows": args.rows}
            ),
        }
    )
    test = io.read_parquet(PATHS.test, "test split (run `make repro` first)")
    plan = ImputationPlan.from_dict(io.read_json(PATHS.imputation))
    model = io.load_model(PATHS.model, TRUSTED_TYPES)
    sample = test.sample(n=min(args.rows, len(test)), random_state=params.seed)

    ours, ours_wall, ours_cpu = timed(importances, model, test, plan, config, params.seed)
    theirs, wall, cpu = timed(
        permutation_importance, model, sample[plan.names()], sample[plan.target],
        scoring="roc_auc", n_repeats=args.repeats, random_state=params.seed, n_jobs=1,
    )  # fmt: skip
    reference = dict(zip(plan.names(), theirs.importances_mean, strict=True))
    mine = dict(zip(ours["feature"], ours["importance"], strict=True))
    names = sorted(reference)
    difference = max(abs(mine[n] - reference[n]) for n in names)
    rho = stats.spearmanr([mine[n] for n in names], [reference[n] for n in names]).statistic

    print(f"rows {len(sample)}, features {len(names)}, repeats {args.repeats}, ROC AUC")
    print(f"{'':38}{'wall s':>8}{'cpu s':>8}")
    print(f"{'sklearn permutation_importance':38}{wall:8.2f}{cpu:8.2f}")
    print(f"{'mlops.evaluation.importances':38}{ours_wall:8.2f}{ours_cpu:8.2f}")
    print(f"speed-up (cpu): {cpu / ours_cpu:.1f}x")
    print(f"largest importance difference: {difference:.4f}; rank correlation {rho:.3f}")
    print(f"top 5 (mlops):   {', '.join(ours['feature'].head(5))}")
    top = np.argsort([-reference[n] for n in names])[:5]
    print(f"top 5 (sklearn): {', '.join(names[i] for i in top)}")


if __name__ == "__main__":
    main()
