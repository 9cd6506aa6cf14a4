"""The imputation plan: per feature, what is missing and how it will be filled.

The plan decides; the fitted scikit-learn imputers inside the model pipeline
do the filling, so serving imputes exactly as training did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from mlops.config import ImputeConfig
from mlops.errors import CheckFailed

MISSING_CATEGORY = "Missing"
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeaturePlan:
    name: str
    kind: Kind
    missing_rate: float
    decision: Literal["keep", "impute"]
    strategy: str
    statistic: float | str
    reason: str


@dataclass(frozen=True)
class ImputationPlan:
    target: str
    features: tuple[FeaturePlan, ...]

    def names(self, kind: Kind | None = None) -> list[str]:
        return [f.name for f in self.features if kind is None or f.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "features": [asdict(f) for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImputationPlan:
        return cls(data["target"], tuple(FeaturePlan(**f) for f in data["features"]))


def feature_kind(column: pd.Series) -> Kind:
    return "numeric" if pd.api.types.is_numeric_dtype(column) else "categorical"


def plan_imputation(
    train: pd.DataFrame, target: str, features: Sequence[str], config: ImputeConfig
) -> ImputationPlan:
    """Fit each feature's statistic on the training split only (no leakage from test)."""
    return ImputationPlan(target, tuple(_plan_feature(train[name], config) for name in features))


def _plan_feature(column: pd.Series, config: ImputeConfig) -> FeaturePlan:
    kind = feature_kind(column)
    observed = column.dropna()
    if observed.empty:
        raise CheckFailed(f"feature {column.name!r} is missing in every training row")
    strategy = config.numeric if kind == "numeric" else config.categorical
    missing_rate = float(column.isna().mean())
    return FeaturePlan(
        name=str(column.name),
        kind=kind,
        missing_rate=round(missing_rate, 6),
        decision="impute" if missing_rate > 0 else "keep",
        strategy=strategy,
        statistic=_statistic(observed, strategy),
        reason=(
            f"{missing_rate:.1%} missing in training"
            if missing_rate > 0
            else "complete in training; imputer kept for serving gaps"
        ),
    )


def _statistic(observed: pd.Series, strategy: str) -> float | str:
    if strategy == "mean":
        return float(observed.mean())
    if strategy == "median":
        return float(observed.median())
    if strategy == "missing_category":
        return MISSING_CATEGORY
    # most_frequent, ties broken by the smallest value as scikit-learn's SimpleImputer does
    counts = observed.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])
