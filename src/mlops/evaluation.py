"""Held-out evaluation: metrics, calibration, baselines, overfitting and plot tables.

``evaluate`` gathers everything the evaluate stage reports; the gate judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.dummy import DummyClassifier
from sklearn.inspection import permutation_importance

from mlops.business import (
    TrialConfig,
    optimal_value,
    parse_trials,
    pick_trials,
    spearman,
    value_at,
    value_curve,
)
from mlops.config import EvaluateConfig, TuneConfig
from mlops.imputation import ImputationPlan
from mlops.modeling import build_pipeline
from mlops.slicing import label_slices, measure_slices, summarise_slices

# Which way is better, for every metric ``score`` reports.
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "accuracy": True,
    "f1": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
}
# scikit-learn scorer names, for permutation importance.
SCORERS = {
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "accuracy": "accuracy",
    "f1": "f1",
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
}
OUTCOMES = ("true_positive", "false_positive", "true_negative", "false_negative")
# "Plain" logistic regression: scikit-learn's defaults, with room to converge.
BASELINE_LOGISTIC_PARAMS = {"max_iter": 1000}
_DIGITS = 6


def rounded(value: float) -> float:
    """Six digits: a PR's metric diff shows meaningful changes, not float noise."""
    return round(float(value), _DIGITS)


def metric_value(name: str, y_true: np.ndarray, proba: np.ndarray, threshold: float) -> float:
    """One metric; NaN when it is undefined (a ranking metric on a single class)."""
    single_class = len(np.unique(y_true)) < 2
    if name in ("roc_auc", "pr_auc") and single_class:
        return float("nan")
    predicted = (proba >= threshold).astype(int)
    value: Any
    if name == "roc_auc":
        value = metrics.roc_auc_score(y_true, proba)
    elif name == "pr_auc":
        value = metrics.average_precision_score(y_true, proba)
    elif name == "accuracy":
        value = metrics.accuracy_score(y_true, predicted)
    elif name == "f1":
        value = metrics.f1_score(y_true, predicted, zero_division=0.0)
    elif name == "log_loss":
        value = metrics.log_loss(y_true, proba, labels=[0, 1])
    elif name == "brier":
        value = metrics.brier_score_loss(y_true, proba, pos_label=1)
    else:
        raise ValueError(f"unknown metric {name!r}")
    return float(value)


def calibration_table(y_true: np.ndarray, proba: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width probability bin: rows, mean predicted probability, observed rate."""
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


def score(y_true: np.ndarray, proba: np.ndarray, config: EvaluateConfig) -> dict[str, float]:
    """Every metric in HIGHER_IS_BETTER, rounded."""
    values = {name: metric_value(name, y_true, proba, config.threshold) for name in SCORERS}
    table = calibration_table(y_true, proba, config.calibration_bins)
    values["ece"] = expected_calibration_error(table)
    return {name: rounded(value) for name, value in values.items()}


def overfit_gap(metric: str, train_value: float, test_value: float) -> float:
    """How much better the model does on data it has seen: > 0 means it fits train better."""
    gap = train_value - test_value
    return gap if HIGHER_IS_BETTER[metric] else -gap


def fit_baselines(train: pd.DataFrame, plan: ImputationPlan, seed: int) -> dict[str, Any]:
    """The two models a candidate must beat, fitted on the same training split."""
    features, y = train[plan.names()], train[plan.target]
    logistic = build_pipeline(plan, "logistic_regression", BASELINE_LOGISTIC_PARAMS, seed)
    return {
        # "prior" predicts the majority class, with the class rate as its probability.
        "majority": DummyClassifier(strategy="prior").fit(features, y),
        "logistic": logistic.fit(features, y),
    }


def positive_proba(model: Any, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return np.asarray(model.predict_proba(frame[features])[:, 1], dtype=float)


def _score_model(
    model: Any, frame: pd.DataFrame, plan: ImputationPlan, config: EvaluateConfig
) -> dict[str, float]:
    proba = positive_proba(model, frame, plan.names())
    return score(frame[plan.target].to_numpy(), proba, config)


def importances(
    model: Any, test: pd.DataFrame, plan: ImputationPlan, config: EvaluateConfig, seed: int
) -> pd.DataFrame:
    """Permutation importance of each raw feature on (a sample of) the test split, seeded.

    The drop in the target metric when one feature's values are shuffled
    across rows, the whole pipeline (imputers, encoders, model) run each time,
    so it holds whatever the imputers do across columns (KNN, indicators).
    """
    result = permutation_importance(
        model,
        test[plan.names()],
        test[plan.target],
        scoring=SCORERS[config.metric],
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


def curves(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, pd.DataFrame]:
    """Tables for DVC plots: ``roc`` (fpr, tpr), ``pr`` (recall, precision), ``confusion``."""
    fpr, tpr, roc_thresholds = metrics.roc_curve(y_true, proba)
    precision, recall, pr_thresholds = metrics.precision_recall_curve(
        y_true, proba, drop_intermediate=True
    )
    return {
        "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": _finite(roc_thresholds)}),
        "pr": pd.DataFrame(
            {"recall": recall[:-1], "precision": precision[:-1], "threshold": pr_thresholds}
        ),
        "confusion": pd.DataFrame(
            {"actual": y_true.astype(int), "predicted": (proba >= threshold).astype(int)}
        ),
    }


def _finite(values: np.ndarray) -> Any:
    # roc_curve's first threshold is +inf, which JSON/CSV plot renderers reject.
    return np.where(np.isfinite(values), values, 1.0)


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
    config: EvaluateConfig,
    tune: TuneConfig,
    seed: int,
    trials: pd.DataFrame | None,
) -> Evaluation:
    """Score ``model`` on ``test`` against baselines, slices and the business metric."""
    labels = label_slices(test, config.slices)  # a bad slice column fails before any work
    y_true, proba = test[plan.target].to_numpy(), positive_proba(model, test, plan.names())
    importance = importances(model, test, plan, config, seed)
    details = {
        "metric": config.metric,
        "higher_is_better": HIGHER_IS_BETTER[config.metric],
        "threshold": config.threshold,
        "rows": {"train": len(train), "test": len(test)},
        "test": score(y_true, proba, config),
        "train": _score_model(model, train, plan, config),
        "baselines": {
            name: _score_model(baseline, test, plan, config)
            for name, baseline in fit_baselines(train, plan, seed).items()
        },
        "business": business_report(y_true, proba, config)
        | {
            "correlation": correlate_trials(
                trials, train, test, plan=plan, config=config, tune=tune, seed=seed
            )
        },
        "slices": slice_report(labels, y_true, proba, config),
        "importance": importance.to_dict(orient="records"),
    }
    tables = curves(y_true, proba, config.threshold) | {
        "calibration": calibration_table(y_true, proba, config.calibration_bins),
        "importance": importance,
        "business": value_curve(y_true, proba, config.business),
    }
    return Evaluation(flat_metrics(details), details, tables)


def business_report(
    y_true: np.ndarray, proba: np.ndarray, config: EvaluateConfig
) -> dict[str, Any]:
    """Expected value per prediction at the best threshold and at the configured one."""
    values = config.business
    threshold, value = optimal_value(y_true, proba, values)
    return {
        "values": values.model_dump(include=set(OUTCOMES)),
        "best_threshold": rounded(threshold),
        "value": rounded(value),
        "value_at_threshold": rounded(value_at(y_true, proba, config.threshold, values)),
    }


def slice_report(
    labels: dict[str, pd.Series], y_true: np.ndarray, proba: np.ndarray, config: EvaluateConfig
) -> dict[str, Any]:
    """The target metric per slice, with the worst slice and the widest gap."""

    def measure(y: np.ndarray, p: np.ndarray) -> float:
        return metric_value(config.metric, y, p, config.threshold)

    records = measure_slices(
        labels,
        y_true,
        proba,
        threshold=config.threshold,
        min_rows=config.slices.min_rows,
        measure=measure,
    )
    summary = summarise_slices(records, HIGHER_IS_BETTER[config.metric])
    return summary | {"min_rows": config.slices.min_rows, "slices": records}


def correlate_trials(
    trials: pd.DataFrame | None,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    plan: ImputationPlan,
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
    rows = _refit_trials(chosen, train, test, plan=plan, config=config, seed=seed)
    sign = 1.0 if HIGHER_IS_BETTER[config.metric] else -1.0
    cv_sign = 1.0 if tune.direction == "maximize" else -1.0
    business = [r["business_value"] for r in rows]
    return {
        "available": True,
        # Metrics are oriented so that +1 means "better metric, more value".
        "spearman": spearman([sign * r[config.metric] for r in rows], business),
        "spearman_cv_score": spearman([cv_sign * r["cv_score"] for r in rows], business),
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
    config: EvaluateConfig,
    seed: int,
) -> list[dict[str, Any]]:
    rows = min(config.business.correlation_rows, len(train))
    sample = train.sample(n=rows, random_state=seed)
    features, y_true = plan.names(), test[plan.target].to_numpy()
    results = []
    for trial in chosen:
        model = build_pipeline(plan, trial.family, trial.params, seed)
        proba = positive_proba(model.fit(sample[features], sample[plan.target]), test, features)
        results.append(
            {
                "trial": trial.number,
                "family": trial.family,
                "cv_score": trial.score,
                config.metric: rounded(
                    metric_value(config.metric, y_true, proba, config.threshold)
                ),
                "business_value": rounded(optimal_value(y_true, proba, config.business)[1]),
            }
        )
    return results


def flat_metrics(details: dict[str, Any]) -> dict[str, float]:
    """reports/metrics.json: flat numbers only, so `dvc metrics diff` reads well.

    An unavailable number is left out (evaluation.json says why), never NaN.
    """
    metric, test, business = details["metric"], details["test"], details["business"]
    train_score = details["train"][metric]
    derived = {
        "train_score": train_score,
        "overfit_gap": rounded(overfit_gap(metric, train_score, test[metric])),
        "baseline_majority": details["baselines"]["majority"][metric],
        "baseline_logistic": details["baselines"]["logistic"][metric],
        "business_value": business["value"],
        "business_threshold": business["best_threshold"],
        "business_value_at_threshold": business["value_at_threshold"],
        "business_correlation": business["correlation"]["spearman"],
        "slice_worst": details["slices"]["worst"],
        "slice_gap": details["slices"]["gap"],
        "slices_too_small": details["slices"]["too_small"],
    }
    flat = dict(test) | {k: rounded(v) for k, v in derived.items() if v is not None}
    return dict(sorted(flat.items()))
