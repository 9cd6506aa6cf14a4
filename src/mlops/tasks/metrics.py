"""The metric registry: every metric's name, task, direction and response, stated once.

Like scikit-learn's scorer registry, each entry says how to compute the metric
and from what (``response``: the predicted labels, the class probabilities or
the predicted values), and whether greater is better. Tuning, feature
importance, imputation's ``auto``, evaluation, slices and the gate all read it,
so a metric has one name everywhere.

This module is imported by the configuration (to check params.yaml), so it
holds only names and functions; scikit-learn is imported when a metric is
computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

TaskName = Literal["binary", "multiclass", "regression"]
TASK_NAMES: tuple[TaskName, ...] = ("binary", "multiclass", "regression")
Response = Literal["label", "proba", "value"]
CLASSIFICATION: frozenset[TaskName] = frozenset({"binary", "multiclass"})


@dataclass(frozen=True)
class Prediction:
    """What a model says about some rows, in the form every metric reads.

    ``classes`` orders ``proba``'s columns (classification); ``label`` is the
    predicted class (binary: 1 when the positive-class probability reaches the
    threshold) or, for regression, the predicted value, which ``value`` also holds.
    """

    label: np.ndarray
    proba: np.ndarray | None = None
    classes: tuple[Any, ...] = ()

    @property
    def value(self) -> np.ndarray:
        return self.label

    @property
    def positive(self) -> np.ndarray:
        """Binary: the probability of class 1."""
        assert self.proba is not None
        return np.asarray(self.proba[:, -1], dtype=float)

    def take(self, rows: np.ndarray) -> Prediction:
        """The prediction for a subset of rows (a boolean mask or positions)."""
        proba = None if self.proba is None else self.proba[rows]
        return Prediction(self.label[rows], proba, self.classes)


Compute = Callable[[np.ndarray, Prediction], float]


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: frozenset[TaskName]
    greater_is_better: bool
    response: Response
    compute: Compute
    description: str
    # Why the metric can be NaN ("" when it never is), for reports that leave it out.
    undefined: str = ""
    # The best value it can take (a perfect model's); the gate asks a baseline that is
    # already near it for a gain it can still reach. None: unbounded.
    best: float | None = None
    # A strictly proper scoring rule: only calibrated probabilities score best, so
    # tuning on it cannot trade calibration for ranking or recall.
    proper: bool = False
    # Measured in the target's own unit (an error in dollars, not a share): a threshold
    # on it only means something relative to the target's spread.
    in_target_units: bool = False

    def headroom(self, value: float) -> float | None:
        """How far ``value`` is from the best value (None: no best)."""
        return None if self.best is None else abs(self.best - value)

    def why_undefined(self, y_true: np.ndarray) -> str:
        """Why the metric is NaN on rows ``y_true`` (for a report that leaves it out)."""
        return "no rows" if len(y_true) == 0 else self.undefined or "undefined on these rows"

    def __call__(self, y_true: np.ndarray, prediction: Prediction) -> float:
        """The metric's value; NaN where it is undefined (one class in ``y_true``, a
        percentage error of a zero)."""
        if len(y_true) == 0:
            return float("nan")
        return float(self.compute(np.asarray(y_true), prediction))

    @property
    def sign(self) -> float:
        """+1 or -1: ``sign * value`` is greater when better (scikit-learn's scorer convention)."""
        return 1.0 if self.greater_is_better else -1.0


def _two_classes(y_true: np.ndarray) -> bool:
    return len(np.unique(y_true)) >= 2


def _roc_auc(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, p.positive)) if _two_classes(y_true) else float("nan")


def _roc_auc_ovr(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import roc_auc_score

    present = np.isin(np.asarray(p.classes), y_true)
    # One-vs-rest, macro: undefined unless the rows hold every class the model knows.
    if not present.all() or len(p.classes) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, p.proba, multi_class="ovr", labels=list(p.classes)))


def _pr_auc(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import average_precision_score

    return (
        float(average_precision_score(y_true, p.positive)) if _two_classes(y_true) else float("nan")
    )


def _log_loss(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y_true, p.proba, labels=list(p.classes)))


def _brier(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y_true, p.positive, pos_label=1))


def _accuracy(y_true: np.ndarray, p: Prediction) -> float:
    return float(np.mean(y_true == p.label))


def _balanced_accuracy(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y_true, p.label))


def _f1(average: Literal["binary", "macro", "weighted"]) -> Compute:
    def compute(y_true: np.ndarray, p: Prediction) -> float:
        from sklearn.metrics import f1_score

        labels = None if average == "binary" else list(p.classes)
        return float(f1_score(y_true, p.label, average=average, labels=labels, zero_division=0.0))

    return compute


def _rmse(y_true: np.ndarray, p: Prediction) -> float:
    return float(np.sqrt(np.mean((y_true - p.value) ** 2)))


def _mae(y_true: np.ndarray, p: Prediction) -> float:
    return float(np.mean(np.abs(y_true - p.value)))


def _r2(y_true: np.ndarray, p: Prediction) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, p.value)) if len(y_true) >= 2 else float("nan")


def _mape(y_true: np.ndarray, p: Prediction) -> float:
    # Undefined where an actual value is zero (scikit-learn would divide by epsilon
    # and report an astronomically large number instead).
    if np.any(y_true == 0):
        return float("nan")
    return float(np.mean(np.abs((y_true - p.value) / y_true)))


_BINARY: frozenset[TaskName] = frozenset({"binary"})
_MULTICLASS: frozenset[TaskName] = frozenset({"multiclass"})
_REGRESSION: frozenset[TaskName] = frozenset({"regression"})
_ONE_CLASS = "the rows hold a single class"

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "roc_auc",
            _BINARY,
            True,
            "proba",
            _roc_auc,
            "area under the ROC curve",
            _ONE_CLASS,
            best=1.0,
        ),
        Metric(
            "pr_auc",
            _BINARY,
            True,
            "proba",
            _pr_auc,
            "average precision (PR curve area)",
            _ONE_CLASS,
            best=1.0,
        ),
        Metric("brier", _BINARY, False, "proba", _brier, "Brier score", best=0.0, proper=True),
        Metric("f1", _BINARY, True, "label", _f1("binary"), "F1 of the positive class", best=1.0),
        Metric(
            "roc_auc_ovr",
            _MULTICLASS,
            True,
            "proba",
            _roc_auc_ovr,
            "one-vs-rest ROC AUC, macro average",
            "the rows lack one of the model's classes",
            best=1.0,
        ),
        Metric("f1_macro", _MULTICLASS, True, "label", _f1("macro"), "F1, macro average", best=1.0),
        Metric(
            "f1_weighted", _MULTICLASS, True, "label", _f1("weighted"), "F1, weighted", best=1.0
        ),
        Metric(
            "log_loss", CLASSIFICATION, False, "proba", _log_loss, "log loss", best=0.0, proper=True
        ),
        Metric("accuracy", CLASSIFICATION, True, "label", _accuracy, "accuracy", best=1.0),
        Metric(
            "balanced_accuracy",
            CLASSIFICATION,
            True,
            "label",
            _balanced_accuracy,
            "balanced accuracy",
            best=1.0,
        ),
        Metric(
            "rmse",
            _REGRESSION,
            False,
            "value",
            _rmse,
            "root mean squared error",
            best=0.0,
            in_target_units=True,
        ),
        Metric(
            "mae",
            _REGRESSION,
            False,
            "value",
            _mae,
            "mean absolute error",
            best=0.0,
            in_target_units=True,
        ),
        Metric(
            "r2",
            _REGRESSION,
            True,
            "value",
            _r2,
            "coefficient of determination",
            "fewer than 2 rows",
            best=1.0,
        ),
        Metric(
            "mape",
            _REGRESSION,
            False,
            "value",
            _mape,
            "mean absolute percentage error",
            "an actual value is zero",
            best=0.0,
        ),
    )
}


def metrics_for(task: TaskName) -> tuple[str, ...]:
    """The names of the metrics that apply to ``task``, in registry order."""
    return tuple(name for name, metric in METRICS.items() if task in metric.tasks)


def get_metric(name: str, task: TaskName) -> Metric:
    """The metric ``name`` for ``task``; ValueError naming the valid ones if it does not fit."""
    metric = METRICS.get(name)
    if metric is None or task not in metric.tasks:
        valid = ", ".join(metrics_for(task))
        why = "is not a metric" if metric is None else f"does not apply to a {task} task"
        raise ValueError(f"{name!r} {why}; {task} metrics: {valid}")
    return metric


def better(name: str, first: float, second: float) -> bool:
    """Is ``first`` strictly better than ``second`` by metric ``name``?"""
    return first > second if METRICS[name].greater_is_better else first < second


# --- the other numbers of reports/metrics.json ------------------------------------------


@dataclass(frozen=True)
class Reported:
    """A number evaluate writes to reports/metrics.json beside the task's metrics.

    ``greater_is_better`` None: no better direction (a threshold is not a quality), so
    no change check may use it. ``target_valued``: a value of the target metric
    (evaluate.metric), whose direction it shares. ``section``: the part of
    evaluate's params it comes from, absent from metrics.json when that part is
    switched off (business: null) or measured nothing (no slice large enough).
    """

    name: str
    tasks: frozenset[TaskName]
    greater_is_better: bool | None
    target_valued: bool = False
    section: Literal["business", "slices", "fairness"] | None = None
    # The number metrics.json gives beside this one as the value chance alone reaches on
    # the test split: a gate.maximum below it is raised to it (gating.absolute_checks).
    noise: str | None = None


_EVERY_TASK: frozenset[TaskName] = frozenset(TASK_NAMES)
MAJORITY_ACCURACY = "majority_accuracy"
ECE_NOISE = "ece_noise"
REPORTED: dict[str, Reported] = {
    r.name: r
    for r in (
        Reported("ece", CLASSIFICATION, False, noise=ECE_NOISE),
        # The ECE a perfectly calibrated model scores by chance on the test split.
        Reported(ECE_NOISE, CLASSIFICATION, None),
        # The accuracy of always predicting the test split's most frequent class: a
        # property of the data, the accuracy a classifier must beat to be of use.
        Reported(MAJORITY_ACCURACY, CLASSIFICATION, None),
        Reported("train_score", _EVERY_TASK, None, target_valued=True),
        Reported("overfit_gap", _EVERY_TASK, False),
        Reported("business_value", _EVERY_TASK, True, section="business"),
        Reported("business_threshold", _BINARY, None, section="business"),
        Reported("business_value_at_threshold", _BINARY, True, section="business"),
        Reported("business_correlation", _EVERY_TASK, True, section="business"),
        Reported("slice_worst", _EVERY_TASK, None, target_valued=True, section="slices"),
        Reported("slice_gap", _EVERY_TASK, False, section="slices"),
        Reported("slices_too_small", _EVERY_TASK, False, section="slices"),
        # Per protected attribute, the worst (evaluation.fairness); regression's analogues.
        Reported("selection_rate_ratio", CLASSIFICATION, True, section="fairness"),
        Reported("selection_rate_ratio_adjusted", CLASSIFICATION, True, section="fairness"),
        Reported("tpr_gap", CLASSIFICATION, False, section="fairness"),
        Reported("fairness_mean_ratio", _REGRESSION, True, section="fairness"),
        Reported("fairness_error_gap", _REGRESSION, False, section="fairness"),
        Reported("fairness_groups_too_small", _EVERY_TASK, False, section="fairness"),
    )
}
BASELINE_PREFIX = "baseline_"  # baseline_<name>: a baseline's value of the target metric
# margin_noise_<name>: how far chance alone can put the model's lead over that baseline
# below its true value on the test split (the gate lowers the baseline's bound by it).
MARGIN_NOISE_PREFIX = "margin_noise_"


def report_names(task: TaskName, baselines: Sequence[str]) -> tuple[str, ...]:
    """The names in reports/metrics.json for ``task``: what a gate threshold may use."""
    return (
        *metrics_for(task),
        *(name for name, reported in REPORTED.items() if task in reported.tasks),
        *(f"{BASELINE_PREFIX}{b}" for b in baselines),
        *(f"{MARGIN_NOISE_PREFIX}{b}" for b in baselines),
    )


def report_direction(name: str, target: str) -> bool | None:
    """Is greater better for the metrics.json number ``name``, when ``target`` is the
    target metric? None: it has no direction. KeyError: no such number."""
    reported = REPORTED.get(name)
    if name.startswith(MARGIN_NOISE_PREFIX):
        return None
    if name.startswith(BASELINE_PREFIX) or (reported is not None and reported.target_valued):
        name = target
    elif reported is not None:
        return reported.greater_is_better
    return METRICS[name].greater_is_better
