"""Today's model pipeline builder (before issue 17), kept only as the reference the
rebuilt, vectorised builder must match prediction for prediction.

One small sub-pipeline per raw feature (and per indicator), through pandas: exactly
the layout of models trained before the rebuild, which must still load and predict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from mlops.errors import CheckFailed
from mlops.features.imputation import MISSING_CATEGORY, ImputationPlan, as_missing
from mlops.features.knn import ScalableKNNImputer
from mlops.tasks import families
from mlops.tasks.metrics import TaskName


def build_pipeline(
    plan: ImputationPlan, family: str, params: Mapping[str, Any], seed: int, task: TaskName
) -> Pipeline:
    """An unfitted pipeline of ``family`` for ``task`` whose imputers follow ``plan``."""
    return Pipeline(
        [
            ("preprocess", build_preprocessor(plan, family)),
            ("model", build_estimator(plan, family, params, seed, task)),
        ]
    )


def build_preprocessor(plan: ImputationPlan, family: str) -> Pipeline:
    """The pipeline's ``preprocess`` step: impute (every gap, as the plan says), then
    encode for ``family``. It has no hyperparameters, so one fit serves every trial.

    The encoder is a ColumnTransformer with one transformer per raw feature (and
    per indicator), which evaluation's importances rely on.
    """
    failed = plan.decided("fail")
    if failed:
        raise CheckFailed(f"the imputation plan stops the pipeline on features {failed}")
    return Pipeline([("impute", build_imputer(plan)), ("encode", _encoder(plan, family))])


def build_imputer(plan: ImputationPlan) -> Pipeline:
    """Fill every gap in the plan's features: same columns, same order, then any indicators.

    Simple strategies fill each column alone; ``knn`` features are filled after
    them, so their neighbours are found on every numeric feature, complete by then.
    """
    used = plan.used()
    knn = [f.name for f in used if f.strategy == "knn"]
    simple: list[tuple[str, Any, list[str]]] = [
        (f.name, "passthrough" if f.name in knn else _imputer(f.strategy), [f.name]) for f in used
    ]
    indicators = [f.name for f in used if f.indicator]
    if indicators:
        simple.append(("indicators", MissingIndicator(features="all"), indicators))
    steps: list[tuple[str, Any]] = [("simple", _columns(simple))]
    if plan.sentinels():
        steps.insert(0, ("sentinels", _as_missing(plan)))
    if knn:
        order = plan.names() + [_indicator_name(name) for name in indicators]
        numeric = plan.names("numeric")
        steps.append(("knn", _columns([("knn", _knn(plan), numeric)], remainder="passthrough")))
        steps.append(("order", _columns([("order", "passthrough", order)])))
    return Pipeline(steps)


def _as_missing(plan: ImputationPlan) -> FunctionTransformer:
    return FunctionTransformer(
        as_missing,
        kw_args={"sentinels": plan.sentinels(), "columns": plan.names()},
        feature_names_out="one-to-one",
    ).set_output(transform="pandas")


def _imputer(strategy: str | None) -> SimpleImputer:
    # keep_empty_features: a column with no value in one CV fold keeps its place.
    if strategy == "missing_category":
        return SimpleImputer(
            strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True
        )
    return SimpleImputer(strategy=strategy or "most_frequent", keep_empty_features=True)


def _knn(plan: ImputationPlan) -> ScalableKNNImputer:
    return ScalableKNNImputer(n_neighbors=plan.n_neighbors, random_state=plan.knn_seed)


def _indicator_name(feature: str) -> str:
    return f"missingindicator_{feature}"


def _columns(
    transformers: list[tuple[str, Any, list[str]]], remainder: str = "drop"
) -> ColumnTransformer:
    transformer = ColumnTransformer(
        transformers, remainder=remainder, verbose_feature_names_out=False
    )
    return transformer.set_output(transform="pandas")


def _encoder(plan: ImputationPlan, family: str) -> ColumnTransformer:
    # One named sub-pipeline per feature, so explain can show each feature "after encode";
    # each indicator is its own group, so importance tells a value from its absence.
    steps: list[tuple[str, Any, list[str]]] = [
        (f.name, Pipeline([("encode", _encoding(f.kind, family))]), [f.name]) for f in plan.used()
    ]
    for feature in plan.used():
        if feature.indicator:
            name = _indicator_name(feature.name)
            steps.append((name, Pipeline([("encode", "passthrough")]), [name]))
    return _columns(steps)


def _encoding(kind: str, family: str) -> Any:
    """How one feature is encoded for ``family`` (its registry entry says which way)."""
    ordinal = families.get_family(family).encoding == "ordinal"
    if kind == "numeric":
        return "passthrough" if ordinal else StandardScaler()
    if ordinal:
        return OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def build_estimator(
    plan: ImputationPlan, family: str, params: Mapping[str, Any], seed: int, task: TaskName
) -> Any:
    return families.build_estimator(family, task, params, plan.names("categorical"), seed)
