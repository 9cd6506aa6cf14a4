"""The saved model imputes in serving exactly as in training, whatever goes missing.

Models are fitted on the 3,000-row ``adult_sample`` with gaps added to its
numeric features (the demo data only lacks categories), saved and loaded
through io as the pipeline does, then fed batches with heavy gaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from mlops.config import ImputeConfig
from mlops.data.splitting import split
from mlops.evaluation.explaining import columns_of
from mlops.features.imputation import (
    ImputationPlan,
    imputation_counts,
    mask_values,
    plan_imputation,
    read_quality,
)
from mlops.features.pipeline import TRUSTED_TYPES, build_imputer, build_pipeline
from mlops.io import modelfile

TARGET = "income"
NUMERIC_GAPS = ["age", "hours_per_week", "education_num"]
PARAMS = {
    "hist_gradient_boosting": {"max_iter": 60},
    "logistic_regression": {"max_iter": 2000},
}
BASE: dict[str, Any] = {
    "policy": "impute",
    "numeric": "median",
    "categorical": "missing_category",
    "overrides": {"age": "knn", "education_num": "knn", "hours_per_week": "mean"},
    "indicators": True,
    "knn": {"n_neighbors": 5},
    "auto": {"family": "hist_gradient_boosting", "cv_folds": 2, "max_rows": 1000},
}


def make_plan(train: pd.DataFrame, **changes: Any) -> ImputationPlan:
    config = ImputeConfig.model_validate({**BASE, **changes})
    quality = read_quality({}, list(train.columns), TARGET)
    return plan_imputation(train, TARGET, quality, config, seed=0)


@pytest.fixture(scope="module")
def splits(adult_sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = split(adult_sample, TARGET, 0.25, 0, "binary")
    return mask_values(train, NUMERIC_GAPS, 0.2, "mcar", 0), test


@pytest.fixture(scope="module")
def plan(splits: tuple[pd.DataFrame, pd.DataFrame]) -> ImputationPlan:
    return make_plan(splits[0])


@pytest.fixture(scope="module")
def serving(splits: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """Unseen rows without their labels, as a production batch arrives."""
    return splits[1].drop(columns=TARGET)


@pytest.fixture(scope="module")
def fitted(splits: tuple[pd.DataFrame, pd.DataFrame], plan: ImputationPlan) -> dict[str, Any]:
    """One model per family, fitted once for the module."""
    return {family: fit(plan, splits[0], family) for family in PARAMS}


def fit(plan: ImputationPlan, train: pd.DataFrame, family: str) -> Any:
    pipeline = build_pipeline(plan, family, PARAMS[family], 0, "binary")
    return pipeline.fit(train[plan.names()], train[TARGET])


def save_and_load(model: Any, tmp_path: Path) -> Any:
    path = tmp_path / "model.skops"
    modelfile.dump(path, model)
    return modelfile.load(path, TRUSTED_TYPES)


def with_gaps(frame: pd.DataFrame, column: str, rate: float, seed: int) -> pd.DataFrame:
    rows = np.random.default_rng(seed).random(len(frame)) < rate
    return frame.assign(**{column: frame[column].mask(rows)})


@pytest.mark.parametrize("family", sorted(PARAMS))
@pytest.mark.parametrize("column", ["age", "hours_per_week", "capital_gain", "occupation", "sex"])
def test_a_saved_model_predicts_a_batch_missing_a_feature_in_90_percent_of_rows(
    serving: pd.DataFrame,
    plan: ImputationPlan,
    fitted: dict[str, Any],
    *,
    family: str,
    column: str,
    tmp_path: Path,
) -> None:
    model = fitted[family]
    loaded = save_and_load(model, tmp_path)
    batch = with_gaps(serving, column, 0.9, 1)
    proba = loaded.predict_proba(batch[plan.names()])[:, 1]
    assert proba.shape == (len(batch),)
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    # serving is training: the loaded model predicts exactly as the fitted one
    np.testing.assert_array_equal(proba, model.predict_proba(batch[plan.names()])[:, 1])
    # and the run can say what was imputed, and how often
    counts = imputation_counts(batch, plan)
    assert counts["features"][column]["rate"] == pytest.approx(0.9, abs=0.05)
    assert (
        counts["features"][column]["strategy"] == plan.features[plan.names().index(column)].strategy
    )


def test_the_fitted_imputers_hold_the_plans_statistics(
    plan: ImputationPlan, fitted: dict[str, Any], tmp_path: Path
) -> None:
    model = save_and_load(fitted["hist_gradient_boosting"], tmp_path)
    simple = model.named_steps["preprocess"].named_steps["impute"].named_steps["simple"]
    statistics: dict[str, Any] = {}
    for _, step, columns in simple.columns_.transformers_:
        imputer = step[-1] if isinstance(step, Pipeline) else step
        statistics.update(zip(columns, getattr(imputer, "statistics_", ()), strict=False))
    checked = 0
    for feature in plan.used():
        if feature.strategy == "knn":  # filled by the KNN step after this one
            assert feature.name not in statistics
            continue
        if isinstance(feature.statistic, float):
            assert statistics[feature.name] == pytest.approx(feature.statistic, rel=1e-12)
        else:
            assert statistics[feature.name] == feature.statistic
        checked += 1
    assert checked == len(plan.used()) - 2  # all but the two knn features


def test_serving_fills_a_gap_with_the_training_statistic(
    serving: pd.DataFrame, plan: ImputationPlan, fitted: dict[str, Any], tmp_path: Path
) -> None:
    model = save_and_load(fitted["logistic_regression"], tmp_path)
    imputer = model.named_steps["preprocess"].named_steps["impute"]
    batch = serving.head(5)
    batch = batch.assign(hours_per_week=np.nan, occupation=pd.Series([None] * 5, dtype="str"))
    out = pd.DataFrame(
        imputer.transform(batch[plan.names()]), columns=imputer.get_feature_names_out()
    )
    by_name = {f.name: f for f in plan.features}
    assert out["hours_per_week"].tolist() == pytest.approx(
        [by_name["hours_per_week"].statistic] * 5, rel=1e-12
    )
    assert out["occupation"].tolist() == ["Missing"] * 5
    assert out["missingindicator_hours_per_week"].tolist() == [True] * 5


def test_every_type_in_a_saved_model_is_reviewed(fitted: dict[str, Any]) -> None:
    for model in fitted.values():
        untrusted = sio.get_untrusted_types(data=sio.dumps(model))
        assert "mlops.features.knn.ScalableKNNImputer" in untrusted
        assert set(untrusted) <= set(TRUSTED_TYPES)


def test_a_sentinel_in_serving_is_imputed_like_a_gap(
    splits: tuple[pd.DataFrame, pd.DataFrame], serving: pd.DataFrame, tmp_path: Path
) -> None:
    train = splits[0]
    findings = {
        "features": [c for c in train.columns if c != TARGET],
        "quality": {"features": {"capital_gain": {"sentinels": [99999.0]}}},
    }
    config = ImputeConfig.model_validate(BASE)
    quality = read_quality(findings, list(train.columns), TARGET)
    plan = plan_imputation(train, TARGET, quality, config, seed=0)
    model = save_and_load(fit(plan, train, "hist_gradient_boosting"), tmp_path)
    coded = serving.assign(capital_gain=99999.0)[plan.names()]
    blank = serving.assign(capital_gain=np.nan)[plan.names()]
    np.testing.assert_array_equal(model.predict_proba(coded), model.predict_proba(blank))
    assert imputation_counts(coded, plan)["features"]["capital_gain"]["rate"] == 1.0


# --- numeric missingness: at random and not at random -----------------------------------------


def rmse_on_gaps(strategy: str, masked: pd.DataFrame, truth: pd.DataFrame) -> float:
    plan = make_plan(masked, numeric=strategy, overrides={}, indicators=False)
    out = build_imputer(plan).set_output(transform="pandas").fit_transform(masked[plan.names()])
    errors = [
        ((out[c] - truth[c])[masked[c].isna()] / truth[c].std()).to_numpy() for c in NUMERIC_GAPS
    ]
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


@pytest.mark.parametrize("mechanism", ["mcar", "mnar"])
@pytest.mark.parametrize("strategy", ["mean", "median", "knn"])
def test_models_survive_numeric_gaps_at_random_and_not_at_random(
    adult_sample: pd.DataFrame, mechanism: str, strategy: str
) -> None:
    train, test = split(adult_sample, TARGET, 0.25, 0, "binary")
    masked_train = mask_values(train, NUMERIC_GAPS, 0.3, mechanism, 1)  # type: ignore[arg-type]
    masked_test = mask_values(test, NUMERIC_GAPS, 0.3, mechanism, 2)  # type: ignore[arg-type]
    plan = make_plan(masked_train, numeric=strategy, overrides={})
    assert {f.name for f in plan.features if f.decision == "impute"} >= set(NUMERIC_GAPS)
    model = fit(plan, masked_train, "hist_gradient_boosting")
    proba = model.predict_proba(masked_test[plan.names()])[:, 1]
    # ~0.90 without gaps; 30 % of three informative features gone costs a little
    assert roc_auc_score(masked_test[TARGET], proba) > 0.85
    # the standardised error of a filled value is about one standard deviation
    assert 0.5 < rmse_on_gaps(strategy, masked_train, train) < 1.6


def test_gaps_not_at_random_bias_a_mean_fill_downwards(adult_sample: pd.DataFrame) -> None:
    masked = mask_values(adult_sample, ["age"], 0.3, "mnar", 0)
    gaps = masked["age"].isna()
    mean = make_plan(masked, overrides={"age": "mean"}).features[0].statistic
    assert isinstance(mean, float)
    # large ages went missing most often: the observed mean underestimates them
    assert mean < adult_sample["age"].mean() < adult_sample["age"][gaps].mean()
    assert gaps.mean() == pytest.approx(0.3, abs=0.03)


def test_knn_beats_a_column_statistic_when_features_are_related() -> None:
    """KNN finds neighbours on the other numeric features, filled first or observed."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=2000)
    truth = pd.DataFrame(
        {f"x{i}": latent * (i + 1) + rng.normal(scale=0.3, size=2000) for i in range(4)}
    ).assign(**{TARGET: (latent > 0).astype(int)})
    masked = mask_values(truth, ["x0", "x1", "x2", "x3"], 0.2, "mcar", 1)
    errors = {}
    for strategy in ("mean", "knn"):
        plan = make_plan(masked, numeric=strategy, overrides={}, indicators=False)
        out = build_imputer(plan).set_output(transform="pandas").fit_transform(masked[plan.names()])
        gaps = masked["x0"].isna()
        errors[strategy] = float(np.sqrt(((out["x0"] - truth["x0"])[gaps] ** 2).mean()))
    assert errors["knn"] < 0.5 * errors["mean"]


def test_each_feature_and_indicator_is_traced_to_its_encoded_columns(
    plan: ImputationPlan, fitted: dict[str, Any]
) -> None:
    """Grouped encoders still give each feature's columns, in plan order, then indicators."""
    names = list(fitted["logistic_regression"]["preprocess"].get_feature_names_out())
    flagged = [f"missingindicator_{f.name}" for f in plan.features if f.indicator]
    assert flagged
    traced = [columns_of(f, names, plan.names()) for f in plan.names()]
    assert all(traced)
    assert [c for cols in traced for c in cols if c not in flagged] + flagged == names
