"""Held-out metrics and the data behind the ROC, PR and confusion-matrix plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free ranking metrics plus accuracy and F1 at ``threshold``."""
    predicted = (proba >= threshold).astype(int)
    values = {
        "roc_auc": metrics.roc_auc_score(y_true, proba),
        "pr_auc": metrics.average_precision_score(y_true, proba),
        "accuracy": metrics.accuracy_score(y_true, predicted),
        "f1": metrics.f1_score(y_true, predicted),
        "log_loss": metrics.log_loss(y_true, proba, labels=[0, 1]),
    }
    # Rounded so a PR's metric diff shows meaningful digits, not float noise.
    return {name: round(float(value), 6) for name, value in values.items()}


def curves(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, pd.DataFrame]:
    """Tables for DVC plots: ``roc`` (fpr, tpr), ``pr`` (recall, precision), ``confusion``."""
    fpr, tpr, roc_thresholds = metrics.roc_curve(y_true, proba)
    precision, recall, pr_thresholds = metrics.precision_recall_curve(y_true, proba)
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
