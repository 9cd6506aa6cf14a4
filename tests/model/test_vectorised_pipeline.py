"""The vectorised pipeline (issue 17) is the same model as the per-feature one it replaced.

Both builders are fitted on the same rows with the same params, for every task and
every family that does it, on a plan that uses every imputation strategy, indicators
and sentinels; their predictions on the held-out split must agree to 1e-12. The old
layout is what a user's registry holds: saved with today's trusted types it must
still load and predict.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.features.imputation import FeaturePlan, ImputationPlan
from mlops.features.pipeline import TRUSTED_TYPES, build_pipeline
from mlops.io import modelfile
from mlops.tasks.families import families_for
from mlops.tasks.metrics import TaskName
from tests.model import reference_pipeline
from tests.model.conftest import TARGET

# (feature, kind, strategy, indicator, sentinels): every strategy, indicators on both
# kinds, sentinels on a numeric feature (with an indicator) and on a category.
FEATURES: tuple[tuple[str, str, str, bool, tuple[Any, ...]], ...] = (
    ("age", "numeric", "mean", False, ()),
    ("workclass", "categorical", "most_frequent", True, ()),
    ("fnlwgt", "numeric", "median", False, ()),
    ("education", "categorical", "missing_category", False, ("Preschool",)),
    ("education_num", "numeric", "knn", True, ()),
    ("marital_status", "categorical", "most_frequent", False, ()),
    ("occupation", "categorical", "missing_category", True, ()),
    ("relationship", "categorical", "most_frequent", False, ()),
    ("capital_gain", "numeric", "median", True, (99999.0,)),
    ("capital_loss", "numeric", "knn", False, ()),
    ("hours_per_week", "numeric", "mean", False, ()),
)
# Per task, the target: the demo's own, and two more of its columns.
TARGETS: dict[TaskName, str] = {
    "binary": TARGET,
    "multiclass": "race",
    "regression": "hours_per_week",
}
# Small and fast: the comparison is exact whatever the fit's quality.
PARAMS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"max_iter": 20, "max_features": 0.8},
    "random_forest": {"n_estimators": 10, "max_features": "sqrt", "min_samples_leaf": 5},
    "logistic_regression": {"max_iter": 300},
    "ridge": {"alpha": 1.0},
}


def plan_for(target: str) -> ImputationPlan:
    features = tuple(
        FeaturePlan(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            decision="impute",
            reason="test",
            strategy=strategy,
            statistic=None,
            indicator=indicator,
            missing_rate=0.1,
            sentinels=sentinels,
            quality=None,
        )
        for name, kind, strategy, indicator, sentinels in FEATURES
        if name != target
    )
    return ImputationPlan(target=target, features=features, n_neighbors=5, knn_seed=3)


@pytest.fixture(scope="module")
def gappy(splits: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's split with a tenth of every feature missing (seeded), sentinels kept."""
    rng = np.random.default_rng(0)
    masked = []
    for split in splits:
        frame = split.copy()
        for name, *_ in FEATURES:
            frame[name] = frame[name].mask(rng.random(len(frame)) < 0.1)
        masked.append(frame)
    return masked[0], masked[1]


CASES = [(task, family) for task in TARGETS for family in families_for(task)]


@pytest.mark.parametrize(("task", "family"), CASES)
def test_the_vectorised_pipeline_predicts_as_the_per_feature_one(
    gappy: tuple[pd.DataFrame, pd.DataFrame], task: TaskName, family: str
) -> None:
    train, test = gappy
    target = TARGETS[task]
    train, test = train.dropna(subset=[target]), test.dropna(subset=[target])
    plan = plan_for(target)
    x, y = train[plan.names()], train[target]
    new = build_pipeline(plan, family, PARAMS[family], 0, task).fit(x, y)
    old = reference_pipeline.build_pipeline(plan, family, PARAMS[family], 0, task).fit(x, y)
    # The test split's own columns, target and protected attributes included: the
    # pipeline picks its features by name, as in serving.
    rows = test.drop(columns=[target])
    np.testing.assert_array_equal(new.predict(rows), old.predict(rows))
    if task != "regression":
        np.testing.assert_allclose(new.predict_proba(rows), old.predict_proba(rows), atol=1e-12)
    else:
        np.testing.assert_allclose(new.predict(rows), old.predict(rows), atol=1e-12, rtol=0)
    # One row alone (serving's case) is answered as in the batch.
    np.testing.assert_array_equal(new.predict(rows.iloc[[7]]), new.predict(rows)[[7]])


def test_both_output_the_same_columns_in_the_same_order(
    gappy: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = gappy
    plan = plan_for(TARGET)
    x, y = train[plan.names()], train[TARGET]
    for family in ("hist_gradient_boosting", "logistic_regression"):
        new = build_pipeline(plan, family, PARAMS[family], 0, "binary").fit(x, y)
        old = reference_pipeline.build_pipeline(plan, family, PARAMS[family], 0, "binary").fit(x, y)
        names = new["preprocess"].get_feature_names_out()
        assert list(names) == list(old["preprocess"].get_feature_names_out())
        encoded = new["preprocess"].transform(test).astype(float)
        np.testing.assert_array_equal(encoded, old["preprocess"].transform(test).to_numpy(float))


def test_a_plan_without_gaps_sentinels_or_knn_is_the_same_model_too(
    splits: tuple[pd.DataFrame, pd.DataFrame], plan: ImputationPlan
) -> None:
    """The demo's own kind of plan (no indicator, no knn, one strategy per kind)."""
    train, test = splits
    simple = replace(plan, features=tuple(replace(f, indicator=False) for f in plan.features))
    x, y = train[simple.names()], train[TARGET]
    params = PARAMS["hist_gradient_boosting"]
    new = build_pipeline(simple, "hist_gradient_boosting", params, 0, "binary").fit(x, y)
    old = reference_pipeline.build_pipeline(simple, "hist_gradient_boosting", params, 0, "binary")
    old.fit(x, y)
    np.testing.assert_allclose(new.predict_proba(test), old.predict_proba(test), atol=1e-12)


def test_a_model_saved_before_the_rebuild_still_loads_and_predicts(
    gappy: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """A registry holds per-feature models (pandas steps, as_missing): still trusted."""
    train, test = gappy
    plan = plan_for(TARGET)
    old = reference_pipeline.build_pipeline(plan, "hist_gradient_boosting", {}, 0, "binary")
    old.fit(train[plan.names()], train[TARGET])
    saved = tmp_path / "model.skops"
    modelfile.dump(saved, old)
    loaded = modelfile.load(saved, TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict_proba(test), old.predict_proba(test))


@pytest.mark.parametrize(
    ("family", "task"), [("logistic_regression", "binary"), ("ridge", "regression")]
)
def test_a_text_feature_of_thousands_of_values_gets_at_most_100_one_hot_columns(
    family: str, task: TaskName
) -> None:
    """A column of 56,007 film titles one-hot encoded made the linear baseline a dense
    47,030 x 45,194 matrix, 15.8 GiB, and evaluate was killed (R's movies). The rarest
    categories past the family's max_categories share a column; so does an unseen one,
    and each output column still traces back to its feature."""
    rng = np.random.default_rng(0)
    rows = 6000
    titles = pd.Series([f"film {i}" for i in rng.integers(0, 5000, rows)], dtype="str")
    x = pd.DataFrame({"title": titles, "length": rng.normal(100, 20, rows)})
    y = pd.Series(rng.integers(0, 2, rows) if task == "binary" else rng.normal(size=rows))
    plan = ImputationPlan(
        target="y",
        features=tuple(
            FeaturePlan(name=name, kind=kind, decision="impute", reason="test",  # type: ignore[arg-type]
                        strategy="most_frequent", statistic=None, indicator=False,
                        missing_rate=0.0, sentinels=(), quality=None)
            for name, kind in (("title", "categorical"), ("length", "numeric"))
        ),
        n_neighbors=5, knn_seed=0,
    )  # fmt: skip
    model = build_pipeline(plan, family, PARAMS[family], 0, task).fit(x, y)
    names = list(model["preprocess"].get_feature_names_out())
    assert len(names) == 101  # 100 for the titles (99 + the rest), 1 for the length
    assert sum(name.startswith("title") for name in names) == 100
    assert names[-1] == "length"
    unseen = pd.DataFrame(
        {"title": pd.Series(["a film never seen"], dtype="str"), "length": [90.0]}
    )
    assert model["preprocess"].transform(unseen).astype(float)[0, :100].sum() == 1.0
    assert np.isfinite(np.asarray(model.predict(unseen), dtype=float)).all()
