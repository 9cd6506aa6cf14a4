"""Feature value: permutation importance on a held-out part of the training split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.config import ImportanceConfig
from mlops.data.importance import indistinguishable, measure, probe
from mlops.data.ingestion import ingest, normalise_name
from mlops.errors import UsageError
from mlops.io.files import load_params
from mlops.tasks.task import get_task
from tests.conftest import ROOT
from tests.sklearn_frames import data_config, diabetes, wine

CONFIG = ImportanceConfig(
    enabled=True,
    holdout=0.3,
    max_rows=2000,
    n_repeats=5,
    z=2.0,
    scoring="roc_auc",
    redundancy=0.9,
    policy="report",
)
FEATURES = ["relationship", "capital_gain", "education", "age", "noise"]


@pytest.fixture(scope="module")
def train(adult_sample: pd.DataFrame) -> pd.DataFrame:
    noise = np.random.default_rng(0).normal(size=len(adult_sample))
    return adult_sample.assign(noise=noise)


def test_signal_is_told_apart_from_noise(train: pd.DataFrame) -> None:
    importances, method = measure(train, FEATURES, "income", CONFIG, seed=0, task_name="binary")
    assert list(importances) == FEATURES
    assert importances["relationship"].zero is False
    assert importances["capital_gain"].zero is False
    assert importances["noise"].zero is True
    assert importances["relationship"].mean > 10 * abs(importances["noise"].mean)
    assert "noise" in indistinguishable(importances)
    assert method == {"scoring": "roc_auc", "fit_rows": 1400, "held_out_rows": 600}


def test_the_same_seed_gives_the_same_importances(train: pd.DataFrame) -> None:
    first, _ = measure(train, FEATURES, "income", CONFIG, seed=1, task_name="binary")
    again, _ = measure(train, FEATURES, "income", CONFIG, seed=1, task_name="binary")
    assert first == again


def test_the_training_frame_is_left_alone(train: pd.DataFrame) -> None:
    before = train.copy()
    measure(train, FEATURES, "income", CONFIG, seed=0, task_name="binary")
    pd.testing.assert_frame_equal(train, before)


def test_a_high_cardinality_text_feature_still_works(train: pd.DataFrame) -> None:
    codes = pd.Series([f"c{i % 400}" for i in range(len(train))], dtype="str")
    importances, _ = measure(
        train.assign(code=codes), ["age", "code"], "income", CONFIG, seed=0, task_name="binary"
    )
    assert set(importances) == {"age", "code"}


def test_too_few_rows_is_a_clear_error(train: pd.DataFrame) -> None:
    tiny = pd.concat([train[train.income == 1].head(1), train[train.income == 0].head(20)])
    with pytest.raises(UsageError) as error:
        measure(tiny, ["age"], "income", CONFIG, seed=0, task_name="binary")
    assert str(error.value) == (
        "feature importance (validate.importance.holdout): 2 parts need at least 2 rows of "
        "each class; class(es) ['1'] have 1; drop or relabel those rows, or use fewer parts"
    )


def test_each_importance_belongs_to_its_own_feature(train: pd.DataFrame) -> None:
    """Text columns are encoded apart from numbers: the names must still line up."""
    noise = pd.Series(np.random.default_rng(1).choice(["a", "b", "c"], len(train)), dtype="str")
    features = ["capital_gain", "noise_text", "age", "relationship"]
    importances, _ = measure(
        train.assign(noise_text=noise), features, "income", CONFIG, seed=0, task_name="binary"
    )
    assert list(importances) == features
    assert [importances[n].zero for n in features] == [False, True, False, False]


def test_the_probe_encodes_numbers_in_one_step_and_text_in_another(train: pd.DataFrame) -> None:
    """One step per column made a prediction on 1,000 numeric columns cost 650 ms in
    scikit-learn's per-step bookkeeping: numbers are one step, text another, and each
    column's output is what a step of its own gave (each text column its own codes)."""
    features = ["age", "relationship", "capital_gain", "education", "noise"]
    encoder, _ = probe(train[features], get_task("binary"), seed=0)
    encoded = encoder.fit_transform(train[features])
    steps = [(step, list(columns)) for step, _, columns in encoder.transformers]
    assert steps == [
        ("numbers", ["age", "capital_gain", "noise"]),
        ("text", ["relationship", "education"]),
    ]
    assert list(encoded.columns) == ["age", "capital_gain", "noise", "relationship", "education"]
    for name in features:
        alone, _ = probe(train[[name]], get_task("binary"), seed=0)
        pd.testing.assert_series_equal(encoded[name], alone.fit_transform(train[[name]])[name])
    numbers, _ = probe(train[["age", "noise"]], get_task("binary"), seed=0)
    assert [step for step, _, _ in numbers.transformers] == ["numbers"]


# --- other tasks: the probe, the scoring and the holdout follow data.task --------------


def _frame(task: str) -> tuple[pd.DataFrame, str]:
    source = wine() if task == "multiclass" else diabetes()
    config = data_config(load_params(ROOT / "params.yaml"), task)
    frame = ingest(source, config).assign(noise=np.random.default_rng(0).normal(size=len(source)))
    return frame, normalise_name(config.target)


@pytest.mark.parametrize(
    ("task", "scoring", "informative"),
    [
        ("multiclass", "log_loss", ["proline", "flavanoids", "color_intensity"]),
        ("multiclass", "accuracy", ["proline", "flavanoids", "color_intensity"]),
        ("regression", "rmse", ["s5", "bmi", "bp"]),
        ("regression", "r2", ["s5", "bmi", "bp"]),
    ],
)
def test_other_tasks_tell_signal_from_noise(
    task: str, scoring: str, informative: list[str]
) -> None:
    """A loss (log_loss, rmse) is turned so that a useful feature's score drop is positive."""
    frame, target = _frame(task)
    features = [c for c in frame.columns if c != target]
    config = CONFIG.model_copy(update={"scoring": scoring})
    importances, method = measure(frame, features, target, config, seed=0, task_name=task)
    assert list(importances) == features
    ranked = sorted(importances, key=lambda name: -importances[name].mean)
    assert set(ranked[:3]) == set(informative)
    assert all(not importances[name].zero for name in informative)
    assert importances["noise"].zero is True
    assert method["fit_rows"] + method["held_out_rows"] == len(frame)


def test_a_metric_of_another_task_is_refused() -> None:
    frame, target = _frame("regression")
    with pytest.raises(ValueError, match="'roc_auc' does not apply to a regression task"):
        measure(frame, ["bmi"], target, CONFIG, seed=0, task_name="regression")


def test_columns_named_as_scikit_learn_s_own_arguments_are_measured(
    train: pd.DataFrame,
) -> None:
    """A column called ``self`` (HMDA's self-employed flag) made ColumnTransformer fail with
    a TypeError; ``remainder`` or ``n_jobs`` it refuses as a step's name."""
    renamed = train.rename(
        columns={"relationship": "self", "capital_gain": "remainder", "age": "n_jobs"}
    )
    features = ["self", "remainder", "n_jobs", "noise"]
    importances, _ = measure(renamed, features, "income", CONFIG, seed=0, task_name="binary")
    assert list(importances) == features
    assert importances["self"].zero is False
    assert importances["noise"].zero is True
