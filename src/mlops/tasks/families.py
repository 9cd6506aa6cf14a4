"""The model family registry: each family declared once, for every task it can do.

A family names its estimator per task, the hyperparameters the pipeline sets
itself (never params.yaml), how features are encoded for it, and the types
outside skops' safe list its fitted model holds. Adding a family is one entry
here plus its search space and fixed values in params.yaml ``tune``; ``mlops init``
writes those from the entry's default space and scikit-learn's defaults.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops.tasks.metrics import TaskName

# How a family wants its features: trees take ordinal codes and raw numbers;
# linear models one-hot categories and standardised numbers.
Encoding = Literal["ordinal", "one_hot"]
# The categorical features: by name (a frame) or by position (the model pipeline's
# encoded array).
Categorical = list[str] | list[int]
# (categorical features, seed) -> hyperparameters the pipeline derives itself.
Derive = Callable[[Categorical, int], dict[str, Any]]
# A search space as params.yaml ``tune.space.<family>`` holds it: per hyperparameter,
# {type: int | float, low, high, log} or {type: categorical, choices}.
Space = Mapping[str, Mapping[str, Any]]


def _seed(categorical: Categorical, seed: int) -> dict[str, Any]:
    return {"random_state": seed}


def _seed_and_categories(categorical: Categorical, seed: int) -> dict[str, Any]:
    return {"random_state": seed, "categorical_features": categorical or None}


@dataclass(frozen=True)
class Family:
    name: str
    # Per task, the estimator's import path (imported when first built: the
    # configuration reads this registry, and must not pay for scikit-learn).
    estimators: Mapping[TaskName, str]
    encoding: Encoding
    derive: Derive
    derived: frozenset[str]
    # A starting search space for a new project (``mlops init``): ranges that suit
    # data sets from a hundred rows to a hundred thousand. A hyperparameter the
    # task's estimator lacks (class_weight for a regressor) is left out.
    space: Space
    trusted_types: tuple[str, ...] = field(default=())
    # The most codes (ordinal) or columns (one-hot) a categorical feature gets; the
    # rarest categories of a feature with more share one (scikit-learn's infrequent
    # categories), and so does a category first seen after fitting.
    max_categories: int | None = None

    def estimator(self, task: TaskName) -> type[Any]:
        try:
            path = self.estimators[task]
        except KeyError:
            doers = [f.name for f in FAMILIES.values() if task in f.estimators]
            raise ValueError(
                f"model family {self.name!r} does not do {task}; {task} families: "
                f"{', '.join(doers)}"
            ) from None
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


# One-hot columns per categorical feature at most: the encoding is dense, so a text
# column of 56,007 film titles made the linear baseline a 47,030 x 45,194 matrix of
# 15.8 GiB (R's movies); at 100 a feature takes what validate's max_categories allows.
_ONE_HOT_COLUMNS = 100


def _int(low: int, high: int, *, log: bool = False) -> dict[str, Any]:
    return {"type": "int", "low": low, "high": high, "log": log}


def _float(low: float, high: float, *, log: bool = False) -> dict[str, Any]:
    return {"type": "float", "low": low, "high": high, "log": log}


_ENSEMBLE = "sklearn.ensemble"
_LINEAR = "sklearn.linear_model"
_CLASSIFICATION: tuple[TaskName, TaskName] = ("binary", "multiclass")

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "hist_gradient_boosting",
            {
                **dict.fromkeys(_CLASSIFICATION, f"{_ENSEMBLE}.HistGradientBoostingClassifier"),
                "regression": f"{_ENSEMBLE}.HistGradientBoostingRegressor",
            },
            "ordinal",
            _seed_and_categories,
            frozenset({"random_state", "categorical_features"}),
            {
                "learning_rate": _float(0.03, 0.3, log=True),
                "max_leaf_nodes": _int(8, 64, log=True),
                "min_samples_leaf": _int(5, 100, log=True),
                "l2_regularization": _float(1.0e-6, 10.0, log=True),
                "max_features": _float(0.5, 1.0),
            },
            ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",),
            # Its categorical splits take at most max_bins (255) categories: a text
            # column with more (names, free text) would fail every fit.
            max_categories=255,
        ),
        Family(
            "random_forest",
            {
                **dict.fromkeys(_CLASSIFICATION, f"{_ENSEMBLE}.RandomForestClassifier"),
                "regression": f"{_ENSEMBLE}.RandomForestRegressor",
            },
            "ordinal",
            _seed,
            frozenset({"random_state"}),
            {
                "n_estimators": _int(50, 200, log=True),
                "max_depth": _int(4, 24),
                "min_samples_leaf": _int(1, 20, log=True),
                "max_features": {"type": "categorical", "choices": ["sqrt", "log2", 0.5]},
            },
            ("sklearn.tree._tree.Tree",),
        ),
        Family(
            "logistic_regression",
            dict.fromkeys(_CLASSIFICATION, f"{_LINEAR}.LogisticRegression"),
            "one_hot",
            _seed,
            frozenset({"random_state"}),
            # No class_weight: reweighting the classes skews the probabilities the gate
            # checks for calibration, and ranking metrics cannot tell (a 27 %-positive
            # set tuned by ROC AUC chose balanced by 0.0006 and failed ECE, 0.22); a
            # decision threshold (evaluate.threshold, the business one) handles imbalance.
            {"C": _float(1.0e-3, 100.0, log=True)},
            max_categories=_ONE_HOT_COLUMNS,
        ),
        Family(
            "ridge",
            {"regression": f"{_LINEAR}.Ridge"},
            "one_hot",
            _seed,
            frozenset({"random_state"}),
            {"alpha": _float(1.0e-3, 1000.0, log=True)},
            max_categories=_ONE_HOT_COLUMNS,
        ),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}"
        ) from None


def families_for(task: TaskName) -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if task in family.estimators)


def build_estimator(
    family: str, task: TaskName, params: Mapping[str, Any], categorical: Categorical, seed: int
) -> Any:
    """``family``'s estimator for ``task`` with ``params`` and the derived hyperparameters."""
    chosen = get_family(family)
    return chosen.estimator(task)(**params, **chosen.derive(categorical, seed))


def hyperparameters(family: str, task: TaskName) -> frozenset[str]:
    """What params.yaml must tune or fix for ``family`` on ``task``: all but derived and
    deprecated ones."""
    chosen = get_family(family)
    values = defaults(family, task)
    # scikit-learn marks a parameter on its way out with the default "deprecated".
    current = {n for n, v in values.items() if not (isinstance(v, str) and v == "deprecated")}
    return frozenset(current - chosen.derived)


def default_space(family: str, task: TaskName) -> dict[str, dict[str, Any]]:
    """``family``'s starting search space on ``task``: a new project's ``tune.space``."""
    known = hyperparameters(family, task)
    space = get_family(family).space
    return {name: dict(spec) for name, spec in space.items() if name in known}


def defaults(family: str, task: TaskName) -> dict[str, Any]:
    """scikit-learn's default for each hyperparameter of ``family``'s estimator on ``task``."""
    return get_family(family).estimator(task)().get_params()  # type: ignore[no-any-return]


def default_fixed(family: str, task: TaskName, searched: frozenset[str]) -> dict[str, Any]:
    """scikit-learn's defaults for every hyperparameter not searched: a starting ``tune.fixed``."""
    values = defaults(family, task)
    return {n: values[n] for n in sorted(hyperparameters(family, task) - searched)}


def check_hyperparameters(family: str, task: TaskName, params: Mapping[str, Any]) -> None:
    """Raise ValueError (scikit-learn's own message) if ``params`` are not valid."""
    # _validate_params is the check every fit() runs first; calling it here reports a
    # bad value before a search starts instead of failing every trial.
    get_family(family).estimator(task)(**params)._validate_params()


# Types outside skops' own safe list that any pipeline may contain, reviewed by
# hand: loading refuses a model file holding anything else.
PIPELINE_TRUSTED_TYPES = (
    "functools.partial",
    # The project's own: pure functions of a frame or an array (as_missing in models
    # saved before issue 17), a KNN imputer whose fitted state is plain numpy arrays
    # and numbers, and a ColumnTransformer wrapper that only reorders columns.
    "mlops.features.imputation.as_missing",
    "mlops.features.imputation.sentinels_as_missing",
    "mlops.features.knn.ScalableKNNImputer",
    "mlops.features.pipeline.PlanOrder",
    "numpy.dtype",
    # params.yaml train.calibration: the fitted estimator with one calibrator per class,
    # and Platt's sigmoid (two floats, a_ and b_).
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.utils.validation.check_array",
)


def trusted_types() -> tuple[str, ...]:
    """Every type a model file of any family may hold beyond skops' safe list."""
    own = {t for family in FAMILIES.values() for t in family.trusted_types}
    return tuple(sorted(set(PIPELINE_TRUSTED_TYPES) | own))
