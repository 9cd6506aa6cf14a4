"""The three tasks, each stated once: target encoding, splits and folds, predictions,
baselines and the prediction schema.

``get_task(params.data.task)`` is how every other module learns what it is
working on; nothing else branches on the task name.

- ``binary``: the target's labels map to 1 (``data.positive_class``) and 0
  (``data.negative_class``); a prediction is the probability of 1 and the label
  at the decision threshold.
- ``multiclass``: the target keeps its labels (text); ``data.classes``, when
  set, lists the allowed ones. The model's ordered class list is recorded in
  the model card; a prediction is one probability per class and the most
  probable class.
- ``regression``: the target is a number; a prediction is a value.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from mlops.errors import UsageError, clip, shorten
from mlops.tasks.metrics import TASK_NAMES, Metric, Prediction, TaskName

if TYPE_CHECKING:
    from mlops.config import DataConfig

Folds = list[tuple[np.ndarray, np.ndarray]]
# Prediction columns every task writes: the prediction itself, and (classification)
# the probabilities it came from.
PREDICTION = "prediction"
PROBABILITY = "probability"
_EXAMPLES = 5
# Regression splits and folds are stratified on quantile bins of the target, so
# each part sees the whole range; at most this many bins.
_REGRESSION_BINS = 10


def _labels(values: pd.Series) -> pd.Series:
    """Labels as stripped text (missing stays missing): 1, "1" and " 1" are one label."""
    text = values.map(_label_text, na_action="ignore")
    return text.astype("object").where(values.notna())


def _label_text(value: object) -> str:
    # A float label read from a typed column ("2.0") is the integer label "2".
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _missing(target: str, labels: pd.Series) -> None:
    if labels.isna().any():
        raise UsageError(
            f"target column {target!r} has {int(labels.isna().sum())} missing values; "
            "drop those rows from the data or label them"
        )


def _topped_up(labels: np.ndarray, positions: np.ndarray, keep: int, seed: int) -> np.ndarray:
    """``positions`` with rows of each class short of ``keep`` (or of all its rows) added,
    drawn seeded from the rows left out."""
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[positions] = True
    rng = np.random.default_rng(seed)
    added = []
    for label in pd.unique(labels):
        mine = labels == label
        short = min(int(mine.sum()), keep) - int((mine & chosen).sum())
        if short > 0:
            added.append(rng.choice(np.flatnonzero(mine & ~chosen), short, replace=False))
    return np.concatenate([positions, *added]) if added else positions


@dataclass(frozen=True)
class Task:
    """What one kind of problem means to every stage."""

    name: ClassVar[TaskName]
    # The metric a new project tunes and gates on, and the baselines evaluate fits.
    default_metric: ClassVar[str]
    baselines: ClassVar[tuple[str, ...]]
    # The model family of the "linear" baseline (tasks.families).
    linear_family: ClassVar[str]
    # Whether the predicted label depends on evaluate.threshold (binary: the cut on the
    # positive-class probability); explain names the threshold only then.
    thresholded: ClassVar[bool] = False
    # The output column (``columns``) whose drift is the prediction-drift verdict; the
    # others are reported beside it. One column, so the verdict's false-alarm rate is
    # its test's level, not inflated by testing several columns that move together.
    drift_column: ClassVar[str] = PREDICTION

    @property
    def is_classification(self) -> bool:
        return self.name != "regression"

    # --- the target ---------------------------------------------------------

    def encode_target(
        self, values: pd.Series, config: DataConfig, target: str, *, whole: bool = True
    ) -> pd.Series:
        """The target as the model learns it; a UsageError for a label that cannot be.
        ``whole``: the target of a data set, which must also hold every class (or vary);
        False for a few outcomes (monitoring's labels file), where one class is normal."""
        raise NotImplementedError

    # --- splits and folds ---------------------------------------------------

    def strata(self, y: pd.Series, parts: int, most: int | None = None) -> pd.Series | None:
        """What splits and folds keep balanced: the classes (or None: plain shuffling).
        ``most``: at most this many strata where the task chooses their number (a
        split's smaller side must hold a row of each)."""
        return y

    def check_parts(self, y: pd.Series, parts: int, what: str) -> None:
        """UsageError unless ``y`` can be cut into ``parts`` balanced parts (``what``: the knob)."""
        counts = y.value_counts()
        if counts.size and counts.min() < parts:
            rare = counts[counts < parts]
            raise UsageError(
                f"{what}: {parts} parts need at least {parts} rows of each class; "
                f"class(es) {shorten([str(c) for c in rare.index[:_EXAMPLES]])} have "
                f"{int(rare.min())}; drop or relabel those rows, or use fewer parts"
            )

    def split(
        self,
        frame: pd.DataFrame,
        target: str,
        test_size: float,
        seed: int,
        what: str,
        *,
        groups: str | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A seeded split of ``frame`` into (rest, ``test_size`` share), balanced by strata.

        With ``groups`` (a column: a customer, a patient, a person in a panel), every
        row of a group lands on one side, and the share is the nearest 1 / k (k folds
        of the groups, the first one held out): 0.2 exactly, 0.3 as a third.
        """
        if groups is not None:
            return self._group_split(frame, target, test_size, seed, what=what, groups=groups)
        from sklearn.model_selection import train_test_split

        y = frame[target]
        n_test = round(len(frame) * test_size)
        strata = self.strata(y, 2, most=min(n_test, len(frame) - n_test))
        classes = 1 if strata is None else strata.nunique()
        if n_test < classes or len(frame) - n_test < classes:
            raise UsageError(
                f"{what}: too few rows to split ({len(frame)} rows into a {test_size} share "
                f"with {classes} strata)"
            )
        if strata is not None:
            self.check_parts(strata, 2, what)
        rest, part = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=strata
        )
        return rest, part

    def _group_split(
        self, frame: pd.DataFrame, target: str, test_size: float, seed: int, *, what: str,
        groups: str,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
        parts = max(2, round(1 / test_size))
        rest, part = self.folds(frame[target], parts, seed, what, groups=frame[groups])[0]
        if self.is_classification:
            missing = set(frame[target].iloc[rest]) ^ set(frame[target].iloc[part])
            if missing:
                raise UsageError(
                    f"{what}: class(es) {shorten(sorted(str(c) for c in missing))} are in too "
                    f"few groups of {groups!r} (split.groups) to be on both sides of the split; "
                    "drop or relabel those rows, or set split.groups: null"
                )
        return frame.iloc[rest], frame.iloc[part]

    def sample(
        self, frame: pd.DataFrame, target: str, rows: int | None, seed: int, *, keep: int = 0
    ) -> pd.DataFrame:
        """A seeded, stratified sample of about ``rows`` rows, in the frame's order. A class
        keeps at least ``keep`` rows (all it has, if fewer): a class the split kept for
        its ``keep`` cross-validation folds must not be thinned below them by the sample."""
        if rows is None or rows >= len(frame):
            return frame
        from sklearn.model_selection import train_test_split

        left = len(frame) - rows  # the rows the sample leaves out hold a row of each stratum
        strata = self.strata(frame[target], 2, most=left)
        if strata is not None and (strata.value_counts().min() < 2 or strata.nunique() > left):
            # A class seen once, or more classes than rows left out (8,000 of a training
            # split of 8,009): a plain sample.
            strata = None
        positions = train_test_split(
            np.arange(len(frame)), train_size=rows, random_state=seed, stratify=strata
        )[0]
        if keep and self.is_classification:
            positions = _topped_up(frame[target].to_numpy(), positions, keep, seed)
        return frame.iloc[np.sort(positions)]

    def folds(
        self,
        y: pd.Series,
        n_folds: int,
        seed: int,
        what: str,
        *,
        groups: pd.Series | None = None,
        order: pd.Series | None = None,
    ) -> Folds:
        """Shuffled, seeded cross-validation folds as (fit positions, score positions);
        with ``groups``, each group's rows in one fold (scikit-learn's StratifiedGroupKFold);
        with ``order`` (times, split.time), forward in time (``_time_folds``)."""
        from sklearn.model_selection import KFold, StratifiedKFold

        strata = self.strata(y, n_folds)
        if len(y) < 2 * n_folds:
            raise UsageError(f"{what}: {n_folds} folds need at least {2 * n_folds} rows")
        if order is not None:
            folds = _time_folds(order, n_folds, what)
            if self.is_classification:
                _check_time_folds(y, folds, what)
            return folds
        if groups is not None:
            return _group_folds(strata, groups, n_folds, seed, what)
        if strata is None:
            splitter: Any = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y))))
        self.check_parts(strata, n_folds, what)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), strata))

    # --- predictions ----------------------------------------------------------

    def predict(self, model: Any, features: Any, threshold: float = 0.5) -> Prediction:
        raise NotImplementedError

    def scorer(self, metric: Metric, threshold: float = 0.5) -> Callable[..., float]:
        """``metric`` as a scikit-learn scorer ``(model, X, y) -> float``: greater is better
        (a loss is negated), as permutation importance and cross-validation expect."""

        def score(model: Any, features: Any, y_true: Any) -> float:
            return metric.sign * metric(
                np.asarray(y_true), self.predict(model, features, threshold)
            )

        return score

    def columns(self, prediction: Prediction) -> dict[str, np.ndarray]:
        """The prediction as output columns (``predict``'s file, ``serve``'s answer)."""
        raise NotImplementedError

    def from_columns(self, columns: Mapping[str, Any]) -> Prediction:
        """The inverse of ``columns``: logged output columns back into a Prediction, so
        monitoring scores logged answers with the metric registry. KeyError if a
        column ``columns`` writes is missing."""
        raise NotImplementedError

    def classes(self, model: Any) -> list[Any]:
        """The model's ordered class list (empty for regression), for the model card."""
        return [plain(c) for c in getattr(model, "classes_", [])]

    def misfit(self, model: Any) -> str | None:
        """Why ``model`` cannot make this task's predictions (None: it can), so serving
        and explain refuse a model trained for another task in one line instead of
        failing inside it or answering in the wrong schema."""
        if not hasattr(model, "predict_proba"):
            return "it gives no class probabilities (a regressor?)"
        return None

    def explained(self, prediction: Prediction) -> tuple[int, str] | None:
        """What ``explain`` follows for the first row of ``prediction``: the column of
        ``proba`` and which class that is, or None for the predicted value itself."""
        raise NotImplementedError

    def dummy(self) -> Any:
        """The trivial baseline: the majority class, with the class rates as probabilities
        (regression overrides it: the mean)."""
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")


def _group_folds(
    strata: pd.Series | None, groups: pd.Series, n_folds: int, seed: int, what: str
) -> Folds:
    """Folds that keep each group whole, as balanced by ``strata`` as whole groups allow.
    A row with no group is a group of its own."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    codes, _ = pd.factorize(groups)
    alone = codes < 0
    codes[alone] = codes.max() + 1 + np.arange(alone.sum())
    found = len(np.unique(codes))
    if found < n_folds:
        raise UsageError(
            f"{what}: {n_folds} parts need at least {n_folds} groups of split.groups "
            f"{str(groups.name)!r}; the data has {found}"
        )
    rows = np.zeros(len(codes))
    if strata is None:
        plain = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(plain.split(rows, groups=codes))
    with warnings.catch_warnings():  # a class in fewer groups than folds: balanced as can be
        warnings.simplefilter("ignore", UserWarning)
        balanced = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(balanced.split(rows, strata, groups=codes))


def _time_folds(order: pd.Series, n_folds: int, what: str) -> Folds:
    """Forward-chaining folds: the rows in time order, cut into ``n_folds`` + 1 blocks of
    about equal rows (a cut moved to where the time changes, so rows of one time share a
    block); fold i fits on blocks 0..i and scores on block i + 1, as a model is trained
    on the past and used on what follows (scikit-learn's TimeSeriesSplit, ties kept)."""
    times = order.to_numpy()
    positions = np.argsort(times, kind="stable")
    ranked = times[positions]
    cuts = []
    for i in range(1, n_folds + 1):
        at = round(i * len(ranked) / (n_folds + 1))
        cuts.append(int(np.searchsorted(ranked, ranked[min(at, len(ranked) - 1)], side="left")))
    edges = [0, *cuts, len(ranked)]
    if any(low >= high for low, high in itertools.pairwise(edges)):
        raise UsageError(
            f"{what}: {n_folds} folds forward in time (split.time {str(order.name)!r}) need "
            f"{n_folds + 1} periods of rows; the times are too few or too bunched: use fewer"
        )
    return [
        (np.sort(positions[: edges[i + 1]]), np.sort(positions[edges[i + 1] : edges[i + 2]]))
        for i in range(n_folds)
    ]


def _check_time_folds(y: pd.Series, folds: Folds, what: str) -> None:
    """UsageError when a fold forward in time fits on rows lacking a class: the model
    cannot predict a class it has not seen, so the fold cannot score it."""
    classes = set(y.dropna())
    for fit, _ in folds:
        lacking = classes - set(y.iloc[fit])
        if lacking:
            raise UsageError(
                f"{what}: the earliest {len(fit)} rows, the first fold's training part "
                f"forward in time (split.time), lack class(es) "
                f"{shorten(sorted(str(c) for c in lacking))}; use fewer folds"
            )


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


class Binary(Task):
    name = "binary"
    default_metric = "roc_auc"
    baselines = ("majority", "logistic")
    linear_family = "logistic_regression"
    thresholded = True
    drift_column = PROBABILITY  # the score: it moves before the labels at the threshold do

    def encode_target(
        self, values: pd.Series, config: DataConfig, target: str, *, whole: bool = True
    ) -> pd.Series:
        """1 for ``data.positive_class``, 0 for ``data.negative_class``; anything else refused."""
        labels = _labels(values)
        _missing(target, labels)
        positive = {_label_text(v) for v in config.positive_class or ()}
        negative = {_label_text(v) for v in config.negative_class or ()}
        unknown = labels[~labels.isin(positive | negative)]
        if not unknown.empty:
            found = labels.value_counts()
            hint = (
                f"it holds {found.size} distinct labels: set data.task: "
                + ("regression" if _numeric(labels) and found.size > 20 else "multiclass")
                if found.size > 2
                else "add them to data.positive_class or data.negative_class"
            )
            raise UsageError(
                f"target column {target!r} has {len(unknown)} values that are neither "
                f"data.positive_class nor data.negative_class "
                f"({shorten([clip(v) for v in unknown.unique()[:_EXAMPLES]])}); {hint}"
            )
        encoded = labels.isin(positive).astype("int64")
        if whole and encoded.nunique() < 2:
            only = "positive" if encoded.iloc[0] == 1 else "negative"
            raise UsageError(
                f"target column {target!r} holds only the {only} class; a binary task needs both"
            )
        return encoded

    def predict(self, model: Any, features: Any, threshold: float = 0.5) -> Prediction:
        proba = np.asarray(model.predict_proba(features), dtype=float)
        label = (proba[:, -1] >= threshold).astype("int64")
        return Prediction(label, proba, tuple(plain(c) for c in model.classes_))

    def columns(self, prediction: Prediction) -> dict[str, np.ndarray]:
        return {PROBABILITY: prediction.positive, PREDICTION: prediction.label}

    def from_columns(self, columns: Mapping[str, Any]) -> Prediction:
        positive = np.asarray(columns[PROBABILITY], dtype=float)
        label = np.asarray(columns[PREDICTION]).astype("int64")
        return Prediction(label, np.column_stack([1.0 - positive, positive]), (0, 1))

    def misfit(self, model: Any) -> str | None:
        classes = self.classes(model) if hasattr(model, "predict_proba") else None
        if classes is not None and classes != [0, 1]:
            return f"its classes are {shorten(classes)}, not the binary task's 0 and 1"
        return super().misfit(model)

    def explained(self, prediction: Prediction) -> tuple[int, str] | None:
        return len(prediction.classes) - 1, "the positive class"


class Multiclass(Task):
    name = "multiclass"
    default_metric = "log_loss"
    baselines = ("majority", "logistic")
    linear_family = "logistic_regression"

    def encode_target(
        self, values: pd.Series, config: DataConfig, target: str, *, whole: bool = True
    ) -> pd.Series:
        """The labels as text; with ``data.classes`` set, any other label is refused."""
        labels = _labels(values)
        _missing(target, labels)
        found = labels.value_counts()
        if config.classes:
            allowed = {_label_text(c) for c in config.classes}
            unknown = sorted(set(found.index) - allowed)
            if unknown:
                raise UsageError(
                    f"target column {target!r} has labels not in data.classes: "
                    f"{shorten(unknown[:_EXAMPLES])}; add them to data.classes"
                )
        if whole and found.size < 3:
            raise UsageError(
                f"target column {target!r} has {found.size} class(es) "
                f"({shorten(list(found.index))}); a multiclass task needs 3 or more"
                + ("; set data.task: binary" if found.size == 2 else "")
            )
        return labels.astype("str")

    def predict(self, model: Any, features: Any, threshold: float = 0.5) -> Prediction:
        proba = np.asarray(model.predict_proba(features), dtype=float)
        classes = np.asarray(model.classes_)
        return Prediction(
            classes[np.argmax(proba, axis=1)], proba, tuple(plain(c) for c in classes)
        )

    def columns(self, prediction: Prediction) -> dict[str, np.ndarray]:
        assert prediction.proba is not None
        per_class = {
            f"{PROBABILITY}_{name}": prediction.proba[:, i]
            for i, name in enumerate(prediction.classes)
        }
        return per_class | {PREDICTION: prediction.label}

    def from_columns(self, columns: Mapping[str, Any]) -> Prediction:
        prefix = f"{PROBABILITY}_"
        names = [str(name) for name in columns if str(name).startswith(prefix)]
        proba = np.column_stack([np.asarray(columns[name], dtype=float) for name in names])
        label = np.asarray(columns[PREDICTION]).astype("str")
        return Prediction(label, proba, tuple(name[len(prefix) :] for name in names))

    def misfit(self, model: Any) -> str | None:
        classes = self.classes(model) if hasattr(model, "predict_proba") else None
        if classes is not None and len(classes) < 3:
            return (
                f"it knows {len(classes)} classes ({shorten(classes)}); "
                "a multiclass model knows 3 or more"
            )
        return super().misfit(model)

    def explained(self, prediction: Prediction) -> tuple[int, str] | None:
        assert prediction.proba is not None
        return int(np.argmax(prediction.proba[0])), "the predicted class"


def _numeric(labels: pd.Series) -> bool:
    return bool(pd.to_numeric(labels, errors="coerce").notna().all())


class Regression(Task):
    name = "regression"
    default_metric = "rmse"
    baselines = ("mean", "linear")
    linear_family = "ridge"

    def encode_target(
        self, values: pd.Series, config: DataConfig, target: str, *, whole: bool = True
    ) -> pd.Series:
        """The target as float64; text that is not a number is refused, with examples."""
        labels = _labels(values)
        _missing(target, labels)
        numbers = pd.to_numeric(labels, errors="coerce")
        bad = labels[numbers.isna() | ~np.isfinite(numbers.fillna(0.0))]
        if not bad.empty:
            raise UsageError(
                f"target column {target!r} has {len(bad)} values that are not finite numbers "
                f"({shorten([clip(v) for v in bad.unique()[:_EXAMPLES]])}); a regression "
                "target must be numeric (or set data.task to binary or multiclass)"
            )
        if whole and numbers.nunique() < 2:
            raise UsageError(f"target column {target!r} is constant; nothing to predict")
        return numbers.astype("float64")

    def strata(self, y: pd.Series, parts: int, most: int | None = None) -> pd.Series | None:
        """Quantile bins of the target, each holding at least ``parts`` rows, at most
        ``most`` of them (None if < 2)."""
        bins = min(_REGRESSION_BINS, len(y) // max(2 * parts, 1), most or _REGRESSION_BINS)
        if bins < 2:
            return None
        binned = pd.qcut(y.rank(method="first"), q=bins, labels=False)
        return pd.Series(binned, index=y.index)

    def check_parts(self, y: pd.Series, parts: int, what: str) -> None:
        return None  # quantile bins are sized to fit (strata)

    def predict(self, model: Any, features: Any, threshold: float = 0.5) -> Prediction:
        return Prediction(np.asarray(model.predict(features), dtype=float))

    def columns(self, prediction: Prediction) -> dict[str, np.ndarray]:
        return {PREDICTION: prediction.value}

    def from_columns(self, columns: Mapping[str, Any]) -> Prediction:
        return Prediction(np.asarray(columns[PREDICTION], dtype=float))

    def classes(self, model: Any) -> list[Any]:
        return []

    def misfit(self, model: Any) -> str | None:
        if hasattr(model, "classes_"):
            return f"it is a classifier (classes {shorten(super().classes(model))})"
        return None

    def explained(self, prediction: Prediction) -> tuple[int, str] | None:
        return None

    def dummy(self) -> Any:
        from sklearn.dummy import DummyRegressor

        return DummyRegressor(strategy="mean")


TASKS: dict[TaskName, Task] = {t.name: t for t in (Binary(), Multiclass(), Regression())}
assert tuple(TASKS) == TASK_NAMES


def get_task(name: str) -> Task:
    try:
        return TASKS[name]  # type: ignore[index]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
