"""One scikit-learn Pipeline per model: imputation, encoding and the estimator.

Saved as one artefact, so serving applies exactly the transforms fitted in
training (no training-serving skew).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted

from mlops.errors import CheckFailed
from mlops.features.imputation import (
    MISSING_CATEGORY,
    FeaturePlan,
    ImputationPlan,
    sentinels_as_missing,
)
from mlops.features.knn import ScalableKNNImputer
from mlops.tasks import families
from mlops.tasks.metrics import TaskName

if TYPE_CHECKING:
    from typing import Self

# Types outside skops' own safe list that these pipelines may contain, whatever
# the family (reviewed by hand, in the family registry): loading refuses a model
# file holding anything else.
TRUSTED_TYPES = families.trusted_types()


def build_pipeline(
    plan: ImputationPlan,
    family: str,
    params: Mapping[str, Any],
    seed: int,
    task: TaskName,
    *,
    calibration: Calibration | None = None,
) -> Pipeline:
    """An unfitted pipeline of ``family`` for ``task`` whose imputers follow ``plan``;
    with ``calibration``, a classifier's probabilities are refitted (``calibrated``)."""
    model = build_estimator(plan, family, params, seed, task)
    if calibration is not None:
        model = calibrated(model, *calibration)
    return Pipeline([("preprocess", build_preprocessor(plan, family)), ("model", model)])


# params.yaml train.calibration's method (sigmoid | isotonic) and its folds (tune.cv_folds).
Calibration = tuple[str, int]


def calibrated(estimator: Any, method: str, folds: int) -> Any:
    """``estimator`` with its probabilities mapped by ``method`` fitted to out-of-fold
    predictions on ``folds`` stratified folds (scikit-learn's CalibratedClassifierCV),
    then refitted on every row: one model, so a prediction costs about what it did. A random
    forest's leaves give a class a probability of exactly 0, which a log loss scores
    at 34.5 per row (R's pbc: 2 of 84 test rows took its log loss from 0.6 to 1.45);
    Platt's sigmoid never gives 0."""
    return CalibratedClassifierCV(estimator, method=method, cv=folds, ensemble=False)


def build_preprocessor(plan: ImputationPlan, family: str) -> Pipeline:
    """The pipeline's ``preprocess`` step: impute (every gap, as the plan says), then
    encode for ``family``. It has no hyperparameters, so one fit serves every trial.

    Each step does one kind of work per group of features (all ``mean`` features in
    one SimpleImputer, all categories in one encoder) on numpy arrays: one row costs
    a few calls, not one pandas round trip per feature. Outputs come in the plan's
    feature order, then the indicators, as per-feature transformers gave them, so a
    model is the same model whichever way it was built.
    """
    failed = plan.decided("fail")
    if failed:
        raise CheckFailed(f"the imputation plan stops the pipeline on features {failed}")
    return Pipeline([("impute", build_imputer(plan)), ("encode", _encoder(plan, family))])


def build_imputer(plan: ImputationPlan) -> Pipeline:
    """Fill every gap in the plan's features: same columns, same order, then any indicators.

    Simple strategies fill their features together, one imputer per strategy and
    kind; ``knn`` features are filled after them, so their neighbours are found on
    every numeric feature, complete by then. Sentinels are made missing first in
    each group that has any, indicators included.
    """
    used = plan.used()
    groups: dict[str, list[FeaturePlan]] = {}
    for feature in used:
        groups.setdefault(_work(feature), []).append(feature)
    transformers = [
        (work, _with_sentinels(_filler(work), members), [f.name for f in members])
        for work, members in groups.items()
    ]
    flagged = [f for f in used if f.indicator]
    if flagged:
        indicators = _with_sentinels(MissingIndicator(features="all"), flagged)
        transformers.append(("indicators", indicators, [f.name for f in flagged]))
    blocks = [(_work(f), groups[_work(f)].index(f)) for f in used]
    blocks += [("indicators", i) for i in range(len(flagged))]
    steps: list[tuple[str, Any]] = [("simple", _ordered(transformers, blocks))]
    if "knn" in groups:
        numeric = [i for i, f in enumerate(used) if f.kind == "numeric"]
        rest = [i for i in range(len(used) + len(flagged)) if i not in numeric]
        knn = [("knn", _knn(plan), numeric), ("rest", "passthrough", rest)]
        steps.append(("knn", _ordered(knn, _by_position(knn))))
    return Pipeline(steps)


def _work(feature: FeaturePlan) -> str:
    """The group a feature is filled in: its strategy, per kind (an imputer's statistics
    are computed the same way for every column of one kind)."""
    strategy = feature.strategy or "most_frequent"
    return strategy if strategy == "knn" else f"{strategy}_{feature.kind}"


def _filler(work: str) -> Any:
    # keep_empty_features: a column with no value in one CV fold keeps its place.
    strategy = work.rpartition("_")[0]
    if work == "knn":
        return "passthrough"  # filled by the knn step
    if strategy == "missing_category":
        return SimpleImputer(
            strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True
        )
    return SimpleImputer(strategy=strategy, keep_empty_features=True)


def _with_sentinels(step: Any, features: Sequence[FeaturePlan]) -> Any:
    """``step`` preceded, if any of ``features`` has sentinels, by making them missing."""
    if not any(f.sentinels for f in features):
        return step
    sentinels = FunctionTransformer(
        sentinels_as_missing,
        kw_args={"sentinels": [list(f.sentinels) for f in features]},
        feature_names_out="one-to-one",
    )
    return Pipeline([("sentinels", sentinels), ("fill", step)])


def _knn(plan: ImputationPlan) -> ScalableKNNImputer:
    return ScalableKNNImputer(n_neighbors=plan.n_neighbors, random_state=plan.knn_seed)


Block = tuple[str, int]  # (transformer, its n-th input column)
Selection = list[tuple[str, Any, list[str]]] | list[tuple[str, Any, list[int]]]


def _ordered(transformers: Selection, blocks: list[Block]) -> PlanOrder:
    """``transformers`` side by side on numpy arrays, their outputs in ``blocks`` order."""
    columns = ColumnTransformer(transformers, verbose_feature_names_out=False)
    return PlanOrder(columns.set_output(transform="default"), blocks)


def _by_position(transformers: list[tuple[str, Any, list[int]]]) -> list[Block]:
    """Blocks in the order of the input columns that ``transformers`` select by position."""
    selected = [(c, name, i) for name, _, cols in transformers for i, c in enumerate(cols)]
    return [(name, i) for _, name, i in sorted(selected)]


class PlanOrder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A ColumnTransformer whose output columns come back in a given order.

    A ColumnTransformer stacks its transformers' outputs one transformer after
    another; grouping features by the work done on them (one imputer per strategy,
    one encoder per encoding) would then reorder the columns the estimator sees,
    and a forest samples features by position. ``blocks`` names, in the wanted
    order, each (transformer, n-th input column) whose outputs come next: one
    column, or a one-hot encoder's columns for that input.
    """

    def __init__(self, columns: ColumnTransformer, blocks: list[Block]) -> None:
        self.columns = columns
        self.blocks = blocks

    def fit(self, X: Any, y: Any = None) -> Self:  # noqa: N803
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> Any:  # noqa: N803
        self.columns_ = clone(self.columns)
        out = self.columns_.fit_transform(X, y, **params)
        self.n_features_in_ = self.columns_.n_features_in_
        if hasattr(self.columns_, "feature_names_in_"):
            self.feature_names_in_ = self.columns_.feature_names_in_
        self.order_ = self._order()
        return out[:, self.order_]

    def transform(self, X: Any) -> Any:  # noqa: N803
        check_is_fitted(self, "order_")
        return self.columns_.transform(X)[:, self.order_]

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        check_is_fitted(self, "order_")
        return self.columns_.get_feature_names_out(input_features)[self.order_]

    def _order(self) -> Any:
        """Output column indices, block by block."""
        starts: dict[Block, range] = {}
        for name, fitted, cols in self.columns_.transformers_:
            if name == "remainder":
                continue
            where = self.columns_.output_indices_[name]
            widths = _widths(fitted, len(cols), where.stop - where.start)
            edges = np.cumsum([where.start, *widths])
            for i in range(len(cols)):
                starts[name, i] = range(int(edges[i]), int(edges[i + 1]))
        return np.array(
            [j for block in self.blocks for j in starts[block[0], block[1]]], dtype=np.intp
        )


def _widths(fitted: Any, inputs: int, outputs: int) -> list[int]:
    """Output columns per input column of one fitted transformer."""
    if outputs == inputs:
        return [1] * inputs
    # A one-hot encoder: a column per category, but one for all of a feature's rarest
    # (its infrequent categories, past the family's max_categories).
    enabled = fitted.max_categories is not None or fitted.min_frequency is not None
    rare = fitted.infrequent_categories_ if enabled else [None] * len(fitted.categories_)
    return [
        len(categories) - (len(few) - 1 if few is not None else 0)
        for categories, few in zip(fitted.categories_, rare, strict=True)
    ]


def _encoder(plan: ImputationPlan, family: str) -> PlanOrder:
    """One encoder per kind of feature, for ``family`` (its registry entry says which
    way); indicators pass through, so importance tells a value from its absence."""
    used = plan.used()
    positions: dict[str, list[int]] = {"numeric": [], "categorical": []}
    for i, feature in enumerate(used):
        positions[feature.kind].append(i)
    flagged = sum(f.indicator for f in used)
    chosen = families.get_family(family)
    ordinal = chosen.encoding == "ordinal"
    # Numbers and indicators leave the imputer in an object array (it holds the
    # categories too): cast here, the estimator gets float64 and converts nothing.
    as_float = FunctionTransformer(validate=True, feature_names_out="one-to-one")
    encoders = {
        "numeric": as_float if ordinal else StandardScaler(),
        "categorical": OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=chosen.max_categories,
        )
        if ordinal
        else OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=chosen.max_categories,
            sparse_output=False,
        ),
    }
    steps = [(kind, encoders[kind], cols) for kind, cols in positions.items() if cols]
    if flagged:
        steps.append(("indicators", as_float, list(range(len(used), len(used) + flagged))))
    return _ordered(steps, _by_position(steps))


def build_estimator(
    plan: ImputationPlan, family: str, params: Mapping[str, Any], seed: int, task: TaskName
) -> Any:
    """The pipeline's ``model`` step: ``family``'s estimator for ``task`` with ``params``.

    Hyperparameters the family derives (the seed, the categorical features of
    ``plan``) are set here; every other one comes from params.yaml ``tune``.
    """
    # The encoded matrix is an array in plan order, so categories go by position.
    categorical = [i for i, f in enumerate(plan.used()) if f.kind == "categorical"]
    return families.build_estimator(family, task, params, categorical, seed)


def model_card(
    *,
    best: Mapping[str, Any],
    plan: ImputationPlan,
    rows: int,
    split_rows: int,
    data_md5: str,
    versions: Mapping[str, str],
    task: TaskName,
    classes: Sequence[Any],
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """What a reviewer needs to trust and reproduce a model.

    Only facts of its inputs: the same inputs give the same card, byte for byte.
    When it was trained and from which checkout are facts of the run
    (reports/runs/train.json); its age is read from git, where it was committed
    (see gating.model_age). ``classes`` is the fitted model's ordered class list
    (``Task.classes``; empty for regression): what its probability columns mean.
    ``rows`` of the training split's ``split_rows`` were fitted (a sample when fewer).
    """
    data = {"path": "data/split/train.parquet", "md5": data_md5, "rows": rows}
    if rows < split_rows:
        data["sampled_from_rows"] = split_rows  # params.yaml train.max_rows
    model: dict[str, Any] = {"family": best["family"], "params": dict(best["params"])}
    if calibration is not None:  # params.yaml train.calibration
        model["calibration"] = {"method": calibration[0], "folds": calibration[1]}
    return {
        "task": task,
        "classes": list(classes),
        "model": model,
        "tuning": {"metric": best["metric"], "cv_score": best["cv_score"]},
        "features": {"numeric": plan.names("numeric"), "categorical": plan.names("categorical")},
        "target": plan.target,
        "training_data": data,
        "libraries": dict(versions),
    }
