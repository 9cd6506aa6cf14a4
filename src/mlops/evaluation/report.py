"""Held-out evaluation: metrics, calibration, baselines, overfitting and plot tables.

``evaluate`` gathers everything the evaluate stage reports; the gate judges it.
Every metric, its direction and its scorer come from the metric registry
(tasks.metrics), every prediction from the task (tasks.task). What else differs
per task (the plot tables, calibration, the business value, what a slice
reports beside the metric) is one ``Report`` per task in ``REPORTS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.inspection import permutation_importance

from mlops.config import BusinessConfig, EvaluateConfig, TuneConfig
from mlops.evaluation import staleness
from mlops.evaluation.business import (
    BusinessValue,
    ClassValue,
    CostValue,
    OutcomeValue,
    TrialConfig,
    parse_trials,
    pick_trials,
    spearman,
)
from mlops.evaluation.fairness import (
    TOO_SMALL,
    ClassificationFairness,
    Fairness,
    RegressionFairness,
    fairness_report,
    protected_groups,
    proxies,
)
from mlops.evaluation.slices import (
    describe_unmeasured,
    label_slices,
    measure_slices,
    summarise_slices,
)
from mlops.features.imputation import ImputationPlan
from mlops.features.pipeline import build_pipeline
from mlops.tasks.metrics import (
    ECE_NOISE,
    MAJORITY_ACCURACY,
    MARGIN_NOISE_PREFIX,
    METRICS,
    TASK_NAMES,
    Metric,
    Prediction,
    TaskName,
    get_metric,
    metrics_for,
)
from mlops.tasks.task import Task

# The expected calibration error: the report's own number, beside the registry's metrics.
ECE = "ece"
# The linear baseline: scikit-learn's defaults, with room to converge.
BASELINE_LINEAR_PARAMS = {"max_iter": 1000}
_DIGITS = 6


def rounded(value: float | None) -> float | None:
    """Six digits: a PR's metric diff shows meaningful changes, not float noise.

    None (an unavailable number) stays None; a NaN becomes None.
    """
    if value is None or np.isnan(value):
        return None
    return round(float(value), _DIGITS)


# --- calibration ---------------------------------------------------------------


def calibration_table(y_true: np.ndarray, proba: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width probability bin: rows, mean predicted probability, observed rate.

    ``y_true`` is 1 where the row is of the class whose probability ``proba`` is.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The same binning as sklearn.calibration.calibration_curve(strategy="uniform").
    index = np.searchsorted(edges[1:-1], proba, side="right")
    frame = pd.DataFrame({"bin": index, "proba": proba, "actual": y_true})
    table = frame.groupby("bin").agg(
        rows=("actual", "size"),
        mean_predicted=("proba", "mean"),
        fraction_positive=("actual", "mean"),
    )
    return table.reset_index().assign(lower=lambda t: edges[t["bin"]])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Row-weighted mean gap between predicted probability and observed rate."""
    weights = table["rows"] / table["rows"].sum()
    return float((weights * (table["mean_predicted"] - table["fraction_positive"]).abs()).sum())


def class_calibration(
    y_true: np.ndarray, prediction: Prediction, classes: list[int], bins: int
) -> pd.DataFrame:
    """One-vs-rest calibration of the probability columns ``classes``, a ``class`` column
    naming each one's rows."""
    assert prediction.proba is not None
    tables = [
        calibration_table(
            (y_true == prediction.classes[i]).astype(int), prediction.proba[:, i], bins
        ).assign(**{"class": prediction.classes[i]})
        for i in classes
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["class", *(c for c in table.columns if c != "class")]]


def class_ece(table: pd.DataFrame) -> float:
    """The mean over classes of each class's one-vs-rest calibration error."""
    return float(np.mean([expected_calibration_error(t) for _, t in table.groupby("class")]))


# Consistency resampling (Broecker and Smith, 2007): labels drawn from a model's own
# probabilities are the labels of a world in which it is perfectly calibrated, so the
# ECE they score is what a perfectly calibrated model shows by chance on as many rows.
# Binned ECE is biased upwards on few rows: a calibrated model's mean is about 0.07 on
# 180 rows with 10 bins, where a bound of 0.05 fails it 85-92 % of the time.
NOISE_DRAWS = 200
NOISE_QUANTILE = 0.95


def drawn_ece(proba: np.ndarray, drawn: np.ndarray, classes: Sequence[int], bins: int) -> float:
    """``class_ece`` of labels ``drawn`` (each row's column index in ``proba``), over the
    probability columns ``classes``, without building the calibration table: per bin,
    |sum of probabilities - count of the class| over all rows is the row-weighted gap."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    errors = []
    for i in classes:
        index = np.searchsorted(edges[1:-1], proba[:, i], side="right")
        predicted = np.bincount(index, weights=proba[:, i], minlength=bins)
        observed = np.bincount(index, weights=(drawn == i).astype(float), minlength=bins)
        errors.append(np.abs(predicted - observed).sum() / len(proba))
    return float(np.mean(errors))


def ece_noise(prediction: Prediction, classes: Sequence[int], bins: int, seed: int) -> float:
    """The ECE (``class_ece`` over the probability columns ``classes``) a perfectly
    calibrated model scores by chance on these rows: the NOISE_QUANTILE of NOISE_DRAWS
    draws of labels from the model's own probabilities (0 on no rows)."""
    assert prediction.proba is not None
    proba = np.asarray(prediction.proba, dtype=float)
    if not len(proba):
        return 0.0
    cumulative = np.cumsum(proba, axis=1)
    cumulative[:, -1] = np.inf  # rounding can leave a row's sum below 1: the last class
    rng = np.random.default_rng(seed)
    errors = [
        drawn_ece(proba, (rng.random(len(proba))[:, None] >= cumulative).sum(axis=1), classes, bins)
        for _ in range(NOISE_DRAWS)
    ]
    return float(np.quantile(errors, NOISE_QUANTILE))


# The lead over a baseline, paired and stratified (each class keeps its test rows, as
# pROC's bootstrap of an AUC does): the same resampled rows score the model and the
# baseline, so what both get wrong alike cancels. Above MARGIN_MAX_ROWS test rows a
# resample of that many is drawn, and its spread scaled by sqrt(draw / rows) (the
# m-out-of-n bootstrap): the noise of 200,000 rows is small, and 800 metric calls on
# them would take longer than the rest of evaluate.
MARGIN_DRAWS = 200
MARGIN_MAX_ROWS = 20_000
_MARGIN_DEFINED = 0.9  # the share of draws on which the metric must be defined


def margin_noise(
    metric: Metric,
    y_true: np.ndarray,
    model: Prediction,
    baseline: Prediction,
    *,
    stratify: bool,
    seed: int,
) -> float | None:
    """How far chance alone can put the model's lead over a baseline (``metric``'s
    sign-oriented difference) below its true value on these test rows: the
    NOISE_QUANTILE of MARGIN_DRAWS paired bootstrap leads less their median. None: no
    rows, or the metric undefined on more than a tenth of the draws."""
    rows = len(y_true)
    if not rows:
        return None
    size = min(rows, MARGIN_MAX_ROWS)
    rng = np.random.default_rng(seed)
    strata = (
        [np.flatnonzero(y_true == label) for label in np.unique(y_true)]
        if stratify
        else [np.arange(rows)]
    )
    counts = [max(1, round(len(s) * size / rows)) for s in strata]
    leads = []
    for _ in range(MARGIN_DRAWS):
        drawn = np.concatenate(
            [part[rng.integers(0, len(part), n)] for part, n in zip(strata, counts, strict=True)]
        )
        y = y_true[drawn]
        lead = metric(y, model.take(drawn)) - metric(y, baseline.take(drawn))
        leads.append(metric.sign * lead)
    found = np.asarray(leads, dtype=float)
    if np.isnan(found).mean() > 1 - _MARGIN_DEFINED:
        return None
    spread = np.nanquantile(found, NOISE_QUANTILE) - np.nanmedian(found)
    return max(0.0, float(spread)) * float(np.sqrt(sum(counts) / rows))


# --- per task ------------------------------------------------------------------


class Report:
    """What evaluation reports for one task beyond the registry's metrics."""

    business: BusinessValue
    # Per protected attribute: selection and error parity (evaluation.fairness).
    fairness: Fairness
    # Does the task's decision depend on evaluate.threshold (binary labels)?
    uses_threshold = False
    # How ECE sums up the calibration table, in evaluation.json's words (None: no ECE).
    ece_definition: str | None = None

    def calibration(
        self, y_true: np.ndarray, prediction: Prediction, bins: int
    ) -> pd.DataFrame | None:
        """The calibration table (None: the task has no probabilities)."""
        return None

    def calibration_noise(self, prediction: Prediction, bins: int, seed: int) -> float | None:
        """The ECE chance alone gives a calibrated model on these rows (``ece_noise``;
        None: the task has no probabilities)."""
        return None

    def tables(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, pd.DataFrame]:
        """Plot tables of the test split's predictions, named like their files."""
        raise NotImplementedError

    def describe(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, float | None]:
        """Numbers that describe a slice beside its metric."""
        return {}


class _Classification(Report):
    def calibrated(self, prediction: Prediction) -> list[int]:
        """The probability columns whose calibration is reported."""
        return list(range(len(prediction.classes)))

    def calibration(
        self, y_true: np.ndarray, prediction: Prediction, bins: int
    ) -> pd.DataFrame | None:
        return class_calibration(y_true, prediction, self.calibrated(prediction), bins)

    def calibration_noise(self, prediction: Prediction, bins: int, seed: int) -> float | None:
        return ece_noise(prediction, self.calibrated(prediction), bins, seed)

    def tables(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, pd.DataFrame]:
        return {"confusion": pd.DataFrame({"actual": y_true, "predicted": prediction.label})}


class BinaryReport(_Classification):
    business = OutcomeValue()
    fairness = ClassificationFairness(lambda prediction: prediction.classes[-1:])  # positive
    uses_threshold = True
    ece_definition = "the positive class's calibration error, row-weighted over bins"

    def calibrated(self, prediction: Prediction) -> list[int]:
        # The negative class's curve mirrors the positive one's: one says it all.
        return [len(prediction.classes) - 1]

    def tables(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, pd.DataFrame]:
        """ROC and precision-recall curves of the positive class, and the confusion rows."""
        proba = prediction.positive
        fpr, tpr, roc_thresholds = metrics.roc_curve(y_true, proba)
        precision, recall, pr_thresholds = metrics.precision_recall_curve(
            y_true, proba, drop_intermediate=True
        )
        return {
            "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": _finite(roc_thresholds)}),
            "pr": pd.DataFrame(
                {"recall": recall[:-1], "precision": precision[:-1], "threshold": pr_thresholds}
            ),
        } | super().tables(y_true, prediction)

    def describe(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, float | None]:
        """How often the slice is positive, and how often the model says so."""
        return {
            "positive_rate": _mean(y_true == 1),
            "selection_rate": _mean(prediction.label == 1),
        }


class MulticlassReport(_Classification):
    business = ClassValue()
    fairness = ClassificationFairness(lambda prediction: prediction.classes)  # each class
    ece_definition = (
        "the mean over classes of each class's one-vs-rest calibration error, "
        "row-weighted over bins"
    )

    def tables(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, pd.DataFrame]:
        """Per-class precision and recall, and the confusion rows."""
        classes = list(prediction.classes)
        precision, recall, f1, support = metrics.precision_recall_fscore_support(
            y_true, prediction.label, labels=classes, zero_division=0.0
        )
        per_class = pd.DataFrame(
            {"class": classes, "precision": precision, "recall": recall, "f1": f1, "rows": support}
        )
        return {"per_class": per_class} | super().tables(y_true, prediction)


class RegressionReport(Report):
    business = CostValue()
    fairness = RegressionFairness()

    def tables(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, pd.DataFrame]:
        """Residuals (actual minus predicted) against the prediction, and predicted vs actual."""
        residual = np.asarray(y_true, dtype=float) - prediction.value
        return {
            "residuals": pd.DataFrame({"predicted": prediction.value, "residual": residual}),
            "predicted_actual": pd.DataFrame({"actual": y_true, "predicted": prediction.value}),
        }

    def describe(self, y_true: np.ndarray, prediction: Prediction) -> dict[str, float | None]:
        """The slice's mean actual and mean predicted value: a bias shows as a difference."""
        return {"mean_actual": _mean(y_true), "mean_predicted": _mean(prediction.value)}


REPORTS: dict[TaskName, Report] = {
    "binary": BinaryReport(),
    "multiclass": MulticlassReport(),
    "regression": RegressionReport(),
}
assert tuple(REPORTS) == TASK_NAMES


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _finite(values: np.ndarray) -> Any:
    # roc_curve's first threshold is +inf, which JSON/CSV plot renderers reject.
    return np.where(np.isfinite(values), values, 1.0)


# --- scores ----------------------------------------------------------------------


def score(
    task: Task, y_true: np.ndarray, prediction: Prediction, config: EvaluateConfig
) -> dict[str, float | None]:
    """Every metric of the task, and ECE for a classifier, rounded; None where undefined."""
    values = {name: METRICS[name](y_true, prediction) for name in metrics_for(task.name)}
    table = REPORTS[task.name].calibration(y_true, prediction, config.calibration_bins)
    if table is not None:
        values[ECE] = class_ece(table)
    return {name: rounded(value) for name, value in values.items()}


def majority_accuracy(y_true: np.ndarray) -> float | None:
    """The accuracy of always predicting the most frequent class of ``y_true``."""
    _, counts = np.unique(y_true, return_counts=True)
    return rounded(counts.max() / counts.sum()) if len(y_true) else None


def undefined(task: Task, y_true: np.ndarray, scores: dict[str, float | None]) -> dict[str, str]:
    """Why each metric left out of ``scores`` (None) is undefined on rows ``y_true``."""
    return {
        name: METRICS[name].why_undefined(y_true)
        for name in metrics_for(task.name)
        if scores.get(name) is None
    }


def overfit_gap(metric: str, train_value: float, test_value: float) -> float:
    """How much better the model does on data it has seen: > 0 means it fits train better."""
    return METRICS[metric].sign * (train_value - test_value)


def fit_baselines(
    train: pd.DataFrame, plan: ImputationPlan, task: Task, seed: int
) -> dict[str, Any]:
    """The models a candidate must beat (Task.baselines), fitted on the same training split:
    the trivial one (majority class or mean) and plain linear regression of the task."""
    features, y = train[plan.names()], train[plan.target]
    linear = build_pipeline(plan, task.linear_family, BASELINE_LINEAR_PARAMS, seed, task=task.name)
    trivial, plain = task.baselines  # Task.baselines names the trivial model, then the linear
    return {trivial: task.dummy().fit(features, y), plain: linear.fit(features, y)}


def predict(
    task: Task, model: Any, frame: pd.DataFrame, plan: ImputationPlan, config: EvaluateConfig
) -> Prediction:
    """``model``'s prediction for ``frame``'s rows (binary labels at evaluate.threshold)."""
    return task.predict(model, frame[plan.names()], config.threshold)


def _score_model(
    task: Task, model: Any, frame: pd.DataFrame, plan: ImputationPlan, config: EvaluateConfig
) -> dict[str, float | None]:
    prediction = predict(task, model, frame, plan, config)
    return score(task, frame[plan.target].to_numpy(), prediction, config)


def importances(
    model: Any,
    test: pd.DataFrame,
    *,
    plan: ImputationPlan,
    task: Task,
    config: EvaluateConfig,
    seed: int,
) -> pd.DataFrame:
    """Permutation importance of each raw feature on (a sample of) the test split, seeded.

    The drop in the target metric (oriented so that a drop is a loss) when one
    feature's values are shuffled across rows, the whole pipeline (imputers,
    encoders, model) run each time, so it holds whatever the imputers do across
    columns (KNN, indicators).
    """
    result = permutation_importance(
        model,
        test[plan.names()],
        test[plan.target],
        scoring=task.scorer(get_metric(config.metric, task.name), config.threshold),
        n_repeats=config.importance.repeats,
        max_samples=min(config.importance.max_rows, len(test)),
        random_state=seed,
        n_jobs=1,
    )
    table = pd.DataFrame(
        {
            "feature": plan.names(),
            "importance": result.importances_mean.round(_DIGITS),
            "std": result.importances_std.round(_DIGITS),
        }
    )
    return table.sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage writes: flat metrics, details, and plot tables."""

    metrics: dict[str, float]
    details: dict[str, Any]
    tables: dict[str, pd.DataFrame]


def evaluate(
    model: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    plan: ImputationPlan,
    task: Task,
    config: EvaluateConfig,
    tune: TuneConfig,
    seed: int,
    trials: pd.DataFrame | None,
    protected: Sequence[str] = (),
    stream: pd.DataFrame | None = None,
) -> Evaluation:
    """Score ``model`` on ``test`` against baselines, slices, the business metric and
    parity across the ``protected`` attributes' groups, and measure its decay with age
    (on ``stream``, rows held out of training replayed as later data, when no time
    column orders the test split)."""
    labels = label_slices(test, config.slices)  # a bad slice column fails before any work
    groups = protected_groups(test, protected)  # so does a protected attribute
    report = REPORTS[task.name]
    metric = get_metric(config.metric, task.name)
    y_true = test[plan.target].to_numpy()
    prediction = predict(task, model, test, plan, config)
    baselines = {
        name: predict(task, baseline, test, plan, config)
        for name, baseline in fit_baselines(train, plan, task, seed).items()
    }
    importance = importances(model, test, plan=plan, task=task, config=config, seed=seed)
    calibration = report.calibration(y_true, prediction, config.calibration_bins)
    test_scores = score(task, y_true, prediction, config)
    details: dict[str, Any] = {
        "task": task.name,
        "metric": config.metric,
        "higher_is_better": metric.greater_is_better,
        **({"threshold": config.threshold} if report.uses_threshold else {}),
        "classes": list(prediction.classes),
        "rows": {"train": len(train), "test": len(test)},
        "test": test_scores,
        # What a classifier's accuracy must beat: always answering the most frequent class.
        **({MAJORITY_ACCURACY: majority_accuracy(y_true)} if task.is_classification else {}),
        "train": _score_model(task, model, train, plan, config),
        "baselines": {name: score(task, y_true, p, config) for name, p in baselines.items()},
        # The gate eases a baseline's bound by this when the model falls short of it.
        "margin_noise": {
            name: rounded(
                margin_noise(
                    metric, y_true, prediction, p, stratify=task.is_classification, seed=seed
                )
            )
            for name, p in baselines.items()
        },
        "margin_noise_definition": (
            f"the {NOISE_QUANTILE:.0%} quantile less the median of the model's lead over the "
            f"baseline in {MARGIN_DRAWS} paired bootstrap draws of the test split"
            f"{' (stratified by class)' if task.is_classification else ''}: how far chance "
            "alone can put the lead below its true value"
        ),
        "business": business_report(report.business, y_true, prediction, config)
        | {
            "correlation": correlate_trials(
                trials, train, test, plan=plan, task=task, config=config, tune=tune, seed=seed
            )
        },
        "slices": slice_report(
            labels, y_true, prediction, report=report, metric=metric, config=config
        ),
        "importance": importance.to_dict(orient="records"),
        "fairness": fairness_report(
            groups, y_true, prediction, measure=report.fairness, config=config.fairness
        )
        | {"proxies": proxies(train, plan.names(), protected, config=config.fairness, seed=seed)},
        "staleness": measure_staleness(
            model, train, test, stream, plan=plan, task=task, metric=metric, config=config
        ),
    }
    noise = report.calibration_noise(prediction, config.calibration_bins, seed)
    if report.ece_definition is not None and noise is not None:
        details["calibration"] = {
            "bins": config.calibration_bins,
            ECE: report.ece_definition,
            # The gate's maximum.ece is never below this (gate.md says when it was raised).
            "noise": rounded(noise),
            "noise_definition": (
                f"the {NOISE_QUANTILE:.0%} quantile of the ECE of {NOISE_DRAWS} draws of "
                "labels from the model's own probabilities: what a perfectly calibrated "
                "model scores by chance on the test split"
            ),
        }
    flat, missing = flat_metrics(details)
    details["unavailable"] = undefined(task, y_true, test_scores) | missing
    tables = report.tables(y_true, prediction) | {"importance": importance}
    tables |= {} if calibration is None else {"calibration": calibration}
    if config.business is not None:
        tables |= report.business.tables(y_true, prediction, config.business)
    return Evaluation(flat, details, dict(sorted(tables.items())))


def measure_staleness(
    model: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    stream: pd.DataFrame | None,
    *,
    plan: ImputationPlan,
    task: Task,
    metric: Metric,
    config: EvaluateConfig,
) -> dict[str, Any]:
    """evaluation.json's staleness section: the target metric's decay with the data's age,
    from evaluate.staleness.time_column, else the held-out stream (see evaluation.staleness)."""
    settings = config.staleness
    if settings.time_column is not None:
        ages = staleness.time_ages(test, train, settings.time_column)
        rows = test
        source = (
            f"the test split ordered by {settings.time_column}, every row after the training "
            "data's latest (split.time)"
            if len(ages) and ages.min() >= 0
            else f"the test split ordered by {settings.time_column} (split at random, the "
            "training data spans the same period: only the test rows after it show decay; "
            "set split.time to test on the latest rows)"
        )
    elif stream is not None:
        ages = staleness.stream_ages(len(stream), settings.windows, settings.window_days)
        rows = stream
        source = (
            f"{settings.stream} replayed in file order as later data; it has no dates, so "
            f"each of the {settings.windows} windows is assumed to be {settings.window_days:g} "
            "days after the previous (evaluate.staleness.window_days)"
        )
    else:
        return staleness.unavailable(
            "the data has no time order (split.time, evaluate.staleness.time_column and stream "
            "are null): no decay measured"
        )
    prediction = predict(task, model, rows, plan, config)
    return staleness.measure_decay(
        rows[plan.target].to_numpy(),
        prediction,
        ages,
        metric=metric,
        config=settings,
        source=source,
    )


# Why there is no business value when evaluate.business is null.
NO_BUSINESS = "evaluate.business is null (no business values set)"


def business_report(
    business: BusinessValue, y_true: np.ndarray, prediction: Prediction, config: EvaluateConfig
) -> dict[str, Any]:
    """evaluation.json's business section; with evaluate.business null, why it is empty."""
    if config.business is None:
        return {"available": False, "reason": NO_BUSINESS}
    return business.report(y_true, prediction, config.business, config.threshold)


def slice_report(
    labels: dict[str, pd.Series],
    y_true: np.ndarray,
    prediction: Prediction,
    *,
    report: Report,
    metric: Metric,
    config: EvaluateConfig,
) -> dict[str, Any]:
    """The target metric per slice, with the worst slice and the widest gap."""
    records = measure_slices(
        labels,
        y_true,
        prediction,
        metric=metric,
        min_rows=config.slices.min_rows,
        describe=report.describe,
    )
    summary = summarise_slices(records, metric.greater_is_better)
    return summary | {"min_rows": config.slices.min_rows, "slices": records}


def correlate_trials(
    trials: pd.DataFrame | None,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    plan: ImputationPlan,
    task: Task,
    config: EvaluateConfig,
    tune: TuneConfig,
    seed: int,
) -> dict[str, Any]:
    """Does a better ML metric mean more business value? Rank correlation over tuning trials.

    The trials table holds each trial's hyperparameters and CV score, not its
    predictions, so a spread of trials is refitted on a sample of the training
    split and scored on the test split: both the target metric and the
    business value then come from the same predictions.
    """
    if config.business is None:
        return _unavailable(NO_BUSINESS)
    if config.business.correlation_trials == 0:
        return _unavailable("switched off (evaluate.business.correlation_trials is 0)")
    if trials is None:
        return _unavailable("no tuning trials table (reports/tuning/trials.csv)")
    configs = parse_trials(trials, tune)
    if isinstance(configs, str):
        return _unavailable(configs)
    chosen = pick_trials(configs, config.business.correlation_trials)
    if len(chosen) < 3:
        return _unavailable(f"{len(chosen)} usable trial(s); a correlation needs at least 3")
    rows = _refit_trials(
        chosen, train, test, plan=plan, task=task, config=config, values=config.business, seed=seed
    )
    # A trial whose metric is undefined on the test split (None) has no rank in it.
    measured = [r for r in rows if r[config.metric] is not None]
    # Metrics are oriented so that +1 means "better metric, more value".
    sign, cv_sign = METRICS[config.metric].sign, METRICS[tune.metric].sign
    return {
        "available": True,
        "spearman": spearman(
            [sign * r[config.metric] for r in measured], [r["business_value"] for r in measured]
        ),
        "spearman_cv_score": spearman(
            [cv_sign * r["cv_score"] for r in rows], [r["business_value"] for r in rows]
        ),
        "refit_rows": min(config.business.correlation_rows, len(train)),
        "trials": rows,
    }


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason, "spearman": None}


def _refit_trials(
    chosen: list[TrialConfig],
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    plan: ImputationPlan,
    task: Task,
    config: EvaluateConfig,
    values: BusinessConfig,
    seed: int,
) -> list[dict[str, Any]]:
    sample = task.sample(train, plan.target, values.correlation_rows, seed)
    features, y_true = plan.names(), test[plan.target].to_numpy()
    metric, business = get_metric(config.metric, task.name), REPORTS[task.name].business
    results = []
    for trial in chosen:
        model = build_pipeline(plan, trial.family, trial.params, seed, task=task.name)
        model.fit(sample[features], sample[plan.target])
        prediction = predict(task, model, test, plan, config)
        results.append(
            {
                "trial": trial.number,
                "family": trial.family,
                "cv_score": trial.score,
                config.metric: rounded(metric(y_true, prediction)),
                "business_value": rounded(business.value(y_true, prediction, values)),
            }
        )
    return results


# evaluation.json's business numbers beside its value, and their names in metrics.json
# (the binary task's threshold search).
_BUSINESS_NAMES = {
    "best_threshold": "business_threshold",
    "value_at_threshold": "business_value_at_threshold",
}


def fairness_numbers(fairness: dict[str, Any]) -> dict[str, tuple[float | None, str]]:
    """metrics.json's fairness numbers (the worst over the protected attributes), each
    with why it is missing."""
    if not fairness["protected"]:
        why = "no protected attribute (params.yaml validate.protected is empty)"
    else:
        small = "; ".join(f"{t['group']} ({t['reason']})" for t in fairness["too_small"][:5])
        why = "no protected attribute has two groups large enough to compare" + (
            f": {small}" if small else ""
        )
    numbers = {name: (w["value"], why) for name, w in fairness["worst"].items()}
    return numbers | {TOO_SMALL: (float(len(fairness["too_small"])), "")}


def flat_metrics(details: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """reports/metrics.json: flat numbers only, so `dvc metrics diff` reads well; and why
    each number of the report that is not available was left out.

    An unavailable number is left out (evaluation.json says why), never NaN.
    Test metrics left out are explained by ``undefined``.
    """
    metric, test, business = details["metric"], details["test"], details["business"]
    train_score, slices = details["train"][metric], details["slices"]
    listed = describe_unmeasured(slices)
    unmeasured = f": {listed}" if listed else ""
    if not slices["slices"]:
        unmeasured = " (evaluate.slices names no attribute)"
    derived: dict[str, tuple[float | None, str]] = {
        "train_score": (train_score, f"{metric} is undefined on the training split"),
        "overfit_gap": (
            None
            if train_score is None or test[metric] is None
            else overfit_gap(metric, train_score, test[metric]),
            f"{metric} is undefined on the training or the test split",
        ),
        **{
            f"baseline_{name}": (scores[metric], f"{metric} is undefined for the {name} baseline")
            for name, scores in details["baselines"].items()
        },
        "business_value": (business.get("value"), business.get("reason", "")),
        **{flat: (business[key], "") for key, flat in _BUSINESS_NAMES.items() if key in business},
        "business_correlation": (
            business["correlation"]["spearman"],
            business["correlation"].get("reason", "a constant over the refitted trials"),
        ),
        "slice_worst": (slices["worst"], f"no slice could be measured{unmeasured}"),
        "slice_gap": (slices["gap"], f"no attribute has two measured slices{unmeasured}"),
        "slices_too_small": (slices["too_small"], ""),
        **fairness_numbers(details["fairness"]),
    }
    flat: dict[str, float] = {k: v for k, v in test.items() if v is not None}
    if details.get("calibration", {}).get("noise") is not None:
        flat[ECE_NOISE] = details["calibration"]["noise"]
    if details.get(MAJORITY_ACCURACY) is not None:
        flat[MAJORITY_ACCURACY] = details[MAJORITY_ACCURACY]
    flat |= {
        f"{MARGIN_NOISE_PREFIX}{name}": noise
        for name, noise in details.get("margin_noise", {}).items()
        if noise is not None
    }
    flat |= {k: round(float(v), _DIGITS) for k, (v, _) in derived.items() if v is not None}
    missing = {k: why for k, (v, why) in derived.items() if v is None}
    return dict(sorted(flat.items())), missing
