"""params.yaml train.calibration: a classifier's probabilities refitted to out-of-fold
predictions, in the one saved pipeline.

The case that asked for it: a random forest on a few hundred rows with a rare class
(R's pbc) gave some test rows a probability of exactly 0 for their own class, each
scored 34.5 by a log loss, and the gate refused a model whose cross-validated score
had been the best of the search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss

from mlops.config import parse_params
from mlops.data.splitting import split
from mlops.errors import UsageError
from mlops.features.imputation import ImputationPlan, plan_imputation, read_quality
from mlops.features.pipeline import TRUSTED_TYPES, build_pipeline, model_card
from mlops.io import files, modelfile
from tests.model.conftest import IMPUTE

TARGET = "status"
FOREST = {"n_estimators": 60, "min_samples_leaf": 1, "max_features": 0.5, "n_jobs": 1}


def _rare_class_frame(rows: int = 420, seed: int = 0) -> pd.DataFrame:
    """Three classes, one rare (8 %), told by four numbers; a tenth of the labels noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    status = np.where(x[:, 0] + 0.5 * x[:, 1] > 0.4, "dead", "censored").astype(object)
    status[x[:, 2] > 1.5] = "transplant"
    noise = rng.random(rows) < 0.1
    status[noise] = rng.choice(["dead", "censored", "transplant"], noise.sum())
    frame = pd.DataFrame(x, columns=["bili", "albumin", "copper", "age"])
    frame["edema"] = rng.choice(["none", "treated", "untreated"], rows)
    frame[TARGET] = status
    return frame


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(_rare_class_frame(), TARGET, 0.2, 0, "multiclass")


@pytest.fixture(scope="module")
def plan(splits: tuple[pd.DataFrame, pd.DataFrame]) -> ImputationPlan:
    train, _ = splits
    quality = read_quality({}, list(train.columns), TARGET)
    return plan_imputation(train, TARGET, quality, IMPUTE, seed=0)


def _fit(plan: ImputationPlan, train: pd.DataFrame, calibration: tuple[str, int] | None) -> object:
    model = build_pipeline(plan, "random_forest", FOREST, 0, "multiclass", calibration=calibration)
    return model.fit(train[plan.names()], train[TARGET])


def _own_class(model: object, test: pd.DataFrame, plan: ImputationPlan) -> np.ndarray:
    proba = model.predict_proba(test[plan.names()])  # type: ignore[attr-defined]
    columns = [list(model.classes_).index(c) for c in test[TARGET]]  # type: ignore[attr-defined]
    return proba[np.arange(len(test)), columns]


def test_sigmoid_calibration_ends_the_zero_probabilities_of_a_forest(
    splits: tuple[pd.DataFrame, pd.DataFrame], plan: ImputationPlan
) -> None:
    train, test = splits
    plain = _fit(plan, train, None)
    calibrated = _fit(plan, train, ("sigmoid", 3))
    assert isinstance(calibrated.steps[-1][1], CalibratedClassifierCV)  # type: ignore[attr-defined]
    before, after = _own_class(plain, test, plan), _own_class(calibrated, test, plan)
    assert (before == 0).sum() >= 1  # the failure this is for
    assert (after > 0).all()
    labels = sorted(train[TARGET].unique())
    proba = {m: m.predict_proba(test[plan.names()]) for m in (plain, calibrated)}  # type: ignore[attr-defined]
    assert log_loss(test[TARGET], proba[calibrated], labels=labels) < log_loss(
        test[TARGET], proba[plain], labels=labels
    )
    # One model refitted on every row, as the plain one: the same classes, in order.
    assert list(calibrated.classes_) == list(plain.classes_) == labels  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_a_calibrated_model_saves_loads_and_says_so(
    splits: tuple[pd.DataFrame, pd.DataFrame], plan: ImputationPlan, tmp_path: Path, method: str
) -> None:
    train, test = splits
    model = _fit(plan, train, (method, 3))
    modelfile.dump(path := tmp_path / "model.skops", model)
    loaded = modelfile.load(path, TRUSTED_TYPES)  # nothing outside the reviewed list
    np.testing.assert_array_equal(
        loaded.predict_proba(test[plan.names()]),
        model.predict_proba(test[plan.names()]),  # type: ignore[attr-defined]
    )
    card = _card(plan, train, calibration=(method, 3))
    assert card["model"]["calibration"] == {"method": method, "folds": 3}
    assert "calibration" not in _card(plan, train)["model"]  # an uncalibrated card: as it was


def _card(
    plan: ImputationPlan, train: pd.DataFrame, calibration: tuple[str, int] | None = None
) -> dict[str, Any]:
    return model_card(
        best={"family": "random_forest", "params": FOREST, "metric": "log_loss", "cv_score": 0.5},
        plan=plan,
        rows=len(train),
        split_rows=len(train),
        data_md5="0" * 32,
        versions={},
        task="multiclass",
        classes=sorted(train[TARGET].unique()),
        calibration=calibration,
    )


def test_calibration_is_for_classifiers_and_named_methods(root: Path) -> None:
    document = files.read_yaml(root / "params.yaml", "params")
    assert document["train"]["calibration"] is None  # the demo keeps its model's own
    document["train"]["calibration"] = "platt"
    with pytest.raises(UsageError, match=r"train\.calibration"):
        parse_params(document, "params.yaml")
    document["train"]["calibration"] = "sigmoid"
    assert parse_params(document, "params.yaml").train.calibration == "sigmoid"
    binary = {"positive_class": None, "negative_class": None}
    document["data"] = {**document["data"], **binary, "task": "regression"}
    with pytest.raises(UsageError, match="a regression has no probabilities to calibrate"):
        parse_params(document, "params.yaml")
